"""The metrics collector's shared volume, as a folder of each trial's own.

On a cluster, Katib's pod webhook mounts an emptyDir volume at the collector's
path in both the training container and the collector (pkg/webhook/v1beta1/pod/
utils.go, mutateMetricsCollectorVolume), so ``--log-path=/katib/mnist.log``
writes into it. Locally there is no container filesystem: every absolute path in
the trial's command, args and env that lies on the way to that mount (the mount,
a path below it, or a folder above it, as in Katib's TFJob example, whose trial
writes ``/logs/train`` and ``/logs/test`` while the collector reads ``/logs/test``)
is moved under the trial's own folder, ``<trial>/fs``. Other paths stay as
they are.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

# An absolute path inside a string: at its start or after "=", ":", "," or whitespace, up to a separator.
ABSOLUTE_PATH = re.compile(r"(?:(?<=^)|(?<=[=:,\s]))/[^\s=:,;'\"]*")
FS_FOLDER = "fs"


class TrialMount:
    """Container paths on the way to ``mount_path`` -> the same paths under ``trial_folder/fs``."""

    def __init__(self, mount_path: str, trial_folder: Path) -> None:
        self.mount_path = posixpath.normpath(mount_path)
        self.root = trial_folder / FS_FOLDER

    def local(self, container_path: str) -> Path:
        """Where a container path lies locally (always under this trial's root)."""
        return self.root / posixpath.normpath(container_path).lstrip("/")

    def prepare(self) -> None:
        """The volume exists before the trial starts, as Katib's emptyDir does."""
        self.local(self.mount_path).mkdir(parents=True, exist_ok=True)

    def rewrite(self, text: str) -> str:
        """``text`` with each path on the way to the mount moved under the trial's root."""
        return ABSOLUTE_PATH.sub(lambda m: self._moved(m.group(0)), text)

    def _moved(self, path: str) -> str:
        normal = posixpath.normpath(path)
        if normal == "/" or not (_within(normal, self.mount_path) or _within(self.mount_path, normal)):
            return path
        moved = str(self.local(normal))
        return moved + "/" if path.endswith("/") else moved


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
