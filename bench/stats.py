"""Small statistics for honest timings: medians of repeats, spreads, paired accuracy differences."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values: Sequence[float]) -> dict:
    """Median, min, max and the number of repeats."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_accuracy_difference(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Accuracy of B minus A (percentage points) on the same test images, with its standard error.

    The standard error comes from the discordant pairs (McNemar): on 10,000 test images two
    models that disagree on 300 of them have a difference known to about ±0.17 pp.
    """
    if len(correct_a) != len(correct_b) or not correct_a:
        raise ValueError("expected two equally long, non-empty lists of per-image results")
    n = len(correct_a)
    only_a = sum(1 for a, b in zip(correct_a, correct_b) if a and not b)
    only_b = sum(1 for a, b in zip(correct_a, correct_b) if b and not a)
    diff = (only_b - only_a) / n
    var = ((only_a + only_b) - (only_b - only_a) ** 2 / n) / n**2
    return {"difference_pp": 100 * diff, "standard_error_pp": 100 * math.sqrt(max(var, 0.0)),
            "only_a": only_a, "only_b": only_b, "n": n}


def paired_mean_difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """Mean of ``b - a`` over paired values, with its standard error (sample sd / sqrt(n)).

    Two GPU study runs that differ in one setting (TF32 against fp32, bf16) train the same trials:
    the per-trial differences of their best validation accuracy carry both the setting's effect and
    the run-to-run noise (GPU training is not bit-reproducible), and the standard error says how
    large a mean difference must be to be more than that noise. One pair has no standard error.
    """
    if len(a) != len(b) or not a:
        raise ValueError("expected two equally long, non-empty lists of paired values")
    diffs = [y - x for x, y in zip(a, b)]
    n = len(diffs)
    sd = statistics.stdev(diffs) if n > 1 else None
    return {"mean": statistics.fmean(diffs), "standard_error": sd / math.sqrt(n) if sd is not None else None,
            "sd": sd, "n": n}
