"""Atomic file writes for the run folder.

A reader (the report step, a second terminal, a resumed run) must never see a
half-written results file, so every write goes to a temporary file in the same
folder and is then renamed over the target (``os.replace`` is atomic there).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import timezone
from pathlib import Path
from typing import Any

# mkstemp creates files readable by the owner only; results are meant to be shared
# like any other file this process writes, so they get the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the finished file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        write(tmp_path)
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when the file does not exist yet."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def utc_timestamp() -> str:
    """Now, in the RFC 3339 form Katib writes into its status fields."""
    from datetime import datetime

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
