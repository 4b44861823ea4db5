"""argparse value types shared by the `study` subcommands (no heavy imports)."""

from __future__ import annotations


def optional_int(text: str) -> int | None:
    """An integer, or none/null/all (empty too) for 'not set'."""
    return None if text.lower() in ("", "none", "null", "all") else int(text)


def optional_float(text: str) -> float | None:
    """A number, or none/null (empty too) for 'not set'."""
    return None if text.lower() in ("", "none", "null") else float(text)
