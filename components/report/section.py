"""What every report section is made of, and the few helpers the sections share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from components.core import storage


@dataclass
class Section:
    title: str
    intro: str = ""
    table: list[list[str]] = field(default_factory=list)  # first row: header
    figures: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def count(n: int, noun: str) -> str:
    """``1 epoch``, ``5 epochs``, ``2,700 images``: a count with its noun, in the plural where it needs one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def read_json(uri: str) -> dict:
    return json.loads(storage.read_text(uri))


def figure(uri: str) -> bytes | None:
    return storage.read_bytes(uri) if storage.exists(uri) else None
