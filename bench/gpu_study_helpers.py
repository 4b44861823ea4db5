"""The GPU study's pure helpers: the slice's sample, list scheduling, the projection, Katib's winner.

No Keras, no project import beyond the standard library: ``tests/unit/test_bench.py`` tests them
directly, and the driver (``bench/gpu_study.py``) re-exports them.
"""

from __future__ import annotations

import argparse
import heapq
import re
import statistics
from pathlib import Path

STAGES = ("optimizer", "activations", "filters")
STAGE_LABELS = {"optimizer": "A: optimizers", "activations": "B: activations", "filters": "C: filters"}
ACCURACY_TOLERANCE_PP = 0.3
EPOCH_LINE = re.compile(r"trial: epoch (\d+)/\d+ trained in ([0-9.]+) s")


def sample_indices(grid_size: int, k: int, include: tuple[int, ...] = ()) -> list[int]:
    """A fixed sample of ``k`` grid points: evenly spaced, plus the ``include`` ones (the study's winners)."""
    if k >= grid_size:
        return list(range(grid_size))
    chosen = set(include)
    spaced = max(k - len(chosen), 1)
    step = grid_size / spaced
    chosen.update(min(grid_size - 1, int(i * step + step / 2)) for i in range(spaced))
    return sorted(chosen)


def makespan(durations: list[float], slots: int) -> float:
    """Wall time of running ``durations`` in this order on ``slots`` workers (each takes the next when free)."""
    free = [0.0] * max(slots, 1)
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def project_stage(sample_durations: list[float], grid_size: int, slots: int, measured_wall: float) -> dict:
    """A whole stage's wall time from a sample's per-trial times (cycled to the grid size).

    The list-scheduling estimate is calibrated by how the sample itself ran:
    ``measured_wall / makespan(sample)`` (scheduling gaps, the last trials' tail).
    """
    if not sample_durations:
        return {"projected_s": None}
    full = [sample_durations[i % len(sample_durations)] for i in range(grid_size)]
    sample_span = makespan(sample_durations, slots)
    factor = measured_wall / sample_span if sample_span > 0 else 1.0
    return {"projected_s": makespan(full, slots) * factor, "calibration": factor,
            "mean_trial_s": statistics.mean(sample_durations)}


def steady_images_per_second(epoch_seconds: list[float], images: int) -> float | None:
    """Images/s of the epochs after the first (which includes compilation)."""
    steady = epoch_seconds[1:] or epoch_seconds
    return images / statistics.median(steady) if steady else None


def winner(results: list[dict]) -> dict | None:
    """Katib's choice: the highest objective (max val_accuracy over epochs); ties go to the lower grid index."""
    done = [r for r in results if r.get("objective") is not None]
    return max(done, key=lambda r: (r["objective"], -r["index"])) if done else None


def write_atomic(path: Path, text: str) -> None:
    """The results file, written whole or not at all (components.core.storage's one atomic writer,
    which imports nothing beyond the standard library: the GPU machine's Python has it)."""
    from components.core.storage import atomic_local_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_local_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def pad_layers_arg(text: str) -> tuple[int, ...]:
    """``--pad-filters``: conv layer numbers, e.g. ``3,4`` (``members.check_pad_layers``, which needs no
    Keras or JAX either)."""
    from components.cnn.packed.members import check_pad_layers
    from components.core.errors import UserError

    try:
        return check_pad_layers(int(n) for n in text.split(",") if n.strip())
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected conv layer numbers, e.g. 3,4") from e
