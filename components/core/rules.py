"""The value rules settings share (:class:`components.core.config.Rule`), each with its one phrase."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from components.core.config import Rule

INTEGER = Rule("an integer")
POSITIVE_INT = Rule("a positive integer", lambda v: v >= 1)
NON_NEGATIVE_INT = Rule("a non-negative integer", lambda v: v >= 0)
POSITIVE_NUMBER = Rule("a positive number", lambda v: math.isfinite(v) and v > 0)
FRACTION = Rule("a number between 0 and 1", lambda v: 0.0 < v < 1.0)


def one_of(names: Sequence[str]) -> Rule:
    """One of ``names``, matched case-insensitively and given back as spelled in ``names``."""
    by_lower = {n.lower(): n for n in names}
    return Rule(f"one of {', '.join(names)}", lambda v: v.strip().lower() in by_lower,
                canonical=lambda v: by_lower[v.strip().lower()])


def per_layer(count: int, what: str, item_problem: Callable[[object], str | None], example: str,
              canonical: Callable[[object], object] | None = None) -> Rule:
    """``count`` values, one per layer, each checked by ``item_problem`` (the first bad one is named)."""
    def problem(values: tuple) -> str | None:
        if len(values) != count:
            return f"expected {count} values, one per conv layer, e.g. {example}"
        return next((p for p in map(item_problem, values) if p), None)

    return Rule(f"{count} {what}, one per conv layer, e.g. {example}", problem=problem,
                canonical=(lambda values: tuple(map(canonical, values))) if canonical else None)
