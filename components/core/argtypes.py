"""argparse value types shared by the `study` subcommands (no heavy imports)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def optional_int(text: str) -> int | None:
    """An integer, or none/null/all (empty too) for 'not set'."""
    return None if text.lower() in ("", "none", "null", "all") else int(text)


def optional_float(text: str) -> float | None:
    """A number, or none/null (empty too) for 'not set'."""
    return None if text.lower() in ("", "none", "null") else float(text)


_KIND_NAMES = {int: "integers", str: "names", float: "numbers"}


def comma_list(kind: Callable[[str], object]) -> Callable[[str], tuple]:
    """A flag's comma-separated values, each converted by ``kind`` (``32,64`` -> ``(32, 64)``)."""
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected comma-separated {_KIND_NAMES.get(kind, kind.__name__)}") from None
    parse.__name__ = f"{kind.__name__} list"
    return parse
