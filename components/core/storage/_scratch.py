"""Scratch folders in the temp folder that go away with their owner, even a killed one.

A remote workspace (``study-ws-*``) or a cache of remote data (``study-data-*``) can hold
hundreds of MB. Each folder is removed when released or when its process exits, and each
holds an OS lock (``flock``) on a file inside it for as long as its process lives. A
process that was killed leaves the folder but not the lock, so the next process that makes
a scratch folder in the same temp folder removes it: a folder whose lock it can take has
no living owner.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIXES = ("study-ws-", "study-data-")
OWNER_LOCK = ".owner.lock"
# Folders of these names without a lock were made by a version that took none: removed only
# when untouched this long, since their owner may still be running.
UNLOCKED_STALE_AFTER_S = 24 * 3600

_held: dict[Path, int] = {}  # folder -> the open, locked file that says its owner lives
_swept: set[str] = set()  # temp folders already swept by this process


def scratch_dir(prefix: str) -> Path:
    """A new folder ``<tempdir>/<prefix>*``, removed by :func:`release_scratch` or at exit."""
    root = tempfile.gettempdir()
    if root not in _swept:
        _swept.add(root)
        sweep_stale(Path(root))
    path = Path(tempfile.mkdtemp(prefix=prefix))
    # Locked before it gets its name: a sweeper never sees an unlocked lock file of a live owner.
    fd = os.open(path / f"{OWNER_LOCK}.new", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(path / f"{OWNER_LOCK}.new", path / OWNER_LOCK)
    _held[path] = fd
    return path


def release_scratch(path: str | Path) -> None:
    """Remove a scratch folder this process made (the folder first, then its lock)."""
    path = Path(path)
    fd = _held.pop(path, None)
    shutil.rmtree(path, ignore_errors=True)
    if fd is not None:
        os.close(fd)


@atexit.register
def _release_all() -> None:
    for path in list(_held):
        release_scratch(path)


def sweep_stale(root: Path) -> list[Path]:
    """Remove this user's scratch folders in ``root`` whose owner is gone; return them."""
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIXES) or Path(entry.path) in _held:
            continue
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != os.getuid():
                continue
            if _owner_gone(Path(entry.path)):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
    return removed


def _owner_gone(folder: Path) -> bool:
    lock = folder / OWNER_LOCK
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
        return time.time() - newest > UNLOCKED_STALE_AFTER_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its owner lives
    finally:
        os.close(fd)
    return True
