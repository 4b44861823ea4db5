"""Atomic file writes for the run folder.

A reader (the report step, a second terminal, a resumed run) must never see a
half-written results file, so every write goes to a temporary file in the same
folder and is then renamed over the target (``os.replace`` is atomic there): the same
writer as every artifact's, ``components.core.storage.atomic_local_path``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timezone
from pathlib import Path
from typing import Any

from components.core.storage import atomic_local_path


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the finished file onto ``path`` (the one atomic write,
    ``components.core.storage.atomic_local_path``: a failed write leaves the old file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_local_path(path) as tmp_path:
        write(tmp_path)


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
