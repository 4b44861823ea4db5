"""The report's pictures of a sweep, drawn from its summary.json.

Bars start at zero, so a 1 pp difference looks like 1 pp; the study's figure is a line across
them. A sweep of two or more parameters is also a heatmap: rows are the combinations of the first
half of its parameters, columns those of the rest, so the study's lexicographic numbering reads
row by row (four layers of three values each: 9 x 9, layers 1-2 down, 3-4 across), with the
study's pick and ours marked. matplotlib is used through ``Figure`` only (no pyplot state),
rendered to PNG bytes.

Two more views, as Katib's UI shows a sweep: the learning curves of the best trials
(validation accuracy per epoch, from each trial's own history) and parallel coordinates (one
axis per parameter and one for the objective, a line per trial, coloured by its accuracy).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence

OBJECTIVE = "val_accuracy"
# A longer sweep shows its best trials as bars (the heatmap shows them all).
MAX_BARS = 20
# A heatmap side longer than this would be unreadable: such a grid gets bars only.
MAX_HEATMAP_SIDE = 30
# Learning curves of this many of the best trials (more lines would hide each other).
TOP_CURVES = 5


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def objective_bars(summary: dict, label: str, study_value: float | None, study_label: str) -> bytes | None:
    """Every trial's validation accuracy, best first, on an axis from 0 to 1 (PNG)."""
    figure = objective_bars_figure(summary, label, study_value, study_label)
    return None if figure is None else _png(figure)


def objective_bars_figure(summary: dict, label: str, study_value: float | None, study_label: str):
    from matplotlib.figure import Figure

    ranked = sorted((t for t in summary["trials"] if t.get(OBJECTIVE) is not None), key=lambda t: -t[OBJECTIVE])
    if not ranked:
        return None
    rows = ranked[:MAX_BARS]
    names = [", ".join(map(str, t["combination"])) for t in rows]
    heights = [t[OBJECTIVE] for t in rows]
    figure = Figure(figsize=(8, max(2.5, 0.28 * len(rows) + 1.2)), layout="constrained")
    axes = figure.add_subplot()
    colors = ["tab:orange" if t["name"] == summary.get("best_trial") else "tab:blue" for t in rows]
    positions = range(len(rows))
    bars = axes.barh(positions, heights, color=colors)
    axes.bar_label(bars, labels=[f"{100 * h:.2f}%" for h in heights], padding=2, fontsize=7)
    axes.set_yticks(list(positions), names, fontsize=7 if len(rows) > 20 else 8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.08)
    axes.set_xlabel("validation accuracy (axis from 0)")
    shown = f"the best {len(rows)} of {len(ranked)}" if len(rows) < len(ranked) else f"{len(rows)}"
    axes.set_title(f"{label} ({shown} trials, best first)")
    if study_value is not None:
        axes.axvline(study_value, color="black", linestyle="--", linewidth=1)
        axes.text(study_value, len(rows) - 0.4, f" study: {study_label}\n {100 * study_value:.2f}%", fontsize=7,
                  va="top", ha="right")
    axes.grid(axis="x", alpha=0.3)
    return figure


def heatmap_split(values: Sequence[Sequence]) -> int | None:
    """How many leading parameters a grid's rows take (the rest are its columns); None: no heatmap."""
    if not values or len(values) < 2 or any(not v for v in values):
        return None
    split = len(values) // 2
    if math.prod(map(len, values[:split])) > MAX_HEATMAP_SIDE or math.prod(map(len, values[split:])) > MAX_HEATMAP_SIDE:
        return None
    return split


def heatmap_cells(trials: Sequence[dict], height: int, width: int) -> list[list[float]]:
    """Each grid point's objective (nan: not run), row-major by grid index. A point run more than once
    (hyperband promotes a trial's values to a larger budget, pbt's children take their parents') shows
    its best."""
    grid = [[math.nan] * width for _ in range(height)]
    for trial in trials:
        if trial.get(OBJECTIVE) is not None:
            row, col = divmod(trial["index"], width)
            if math.isnan(grid[row][col]) or trial[OBJECTIVE] > grid[row][col]:
                grid[row][col] = trial[OBJECTIVE]
    return grid


def grid_heatmap(summary: dict, label: str, study_combination: Sequence | None) -> bytes | None:
    """A grid of two or more parameters as a map of validation accuracy (blank: not run)."""
    values = summary.get("values")
    split = heatmap_split(values)
    if split is None:
        return None
    from matplotlib.figure import Figure

    rows, cols = values[:split], values[split:]
    height, width = math.prod(map(len, rows)), math.prod(map(len, cols))
    grid = heatmap_cells(summary["trials"], height, width)
    if all(math.isnan(v) for line in grid for v in line):
        return None
    names = summary.get("parameters") or [f"parameter {i}" for i in range(1, len(values) + 1)]
    row_labels = [", ".join(map(str, c)) for c in itertools.product(*rows)]
    col_labels = [", ".join(map(str, c)) for c in itertools.product(*cols)]
    figure = Figure(figsize=(max(4.5, 0.5 * width + 3), max(3.5, 0.5 * height + 2)), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(grid, cmap="viridis")
    figure.colorbar(image, ax=axes, label="validation accuracy", shrink=0.8)
    axes.set_xticks(range(width), col_labels, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(height), row_labels, fontsize=8)
    axes.set_xlabel(", ".join(names[split:]))
    axes.set_ylabel(", ".join(names[:split]))
    run = sum(not math.isnan(v) for line in grid for v in line)
    axes.set_title(f"{label} ({run} of {width * height} combinations run)")
    marks = [(summary.get("best_index"), "o", "ours", "white")]
    if study_combination is not None:
        try:
            study_index = _index_of([str(v) for v in study_combination], values)
        except ValueError:
            study_index = None
        marks.append((study_index, "x", "study", "red"))
    for index, marker, name, color in marks:
        if index is not None:
            row, col = divmod(index, width)
            style = {"facecolors": "none", "edgecolors": color} if marker == "o" else {"c": color}
            axes.scatter([col], [row], marker=marker, s=160, linewidths=2, label=name, **style)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, facecolor="lightgrey")
    return _png(figure)


def _index_of(combination: Sequence[str], values: Sequence[Sequence[str]]) -> int:
    index = 0
    for value, options in zip(combination, values):
        index = index * len(options) + [str(o) for o in options].index(value)
    return index


def _ranked(summary: dict) -> list[dict]:
    """The trials that reported the objective, best first (ties: the lower grid index)."""
    return sorted((t for t in summary["trials"] if t.get(OBJECTIVE) is not None),
                  key=lambda t: (-t[OBJECTIVE], t["index"]))


def top_trial_curves(summary: dict, label: str, top: int = TOP_CURVES) -> bytes | None:
    """Validation accuracy per epoch of the ``top`` best trials that recorded a history (PNG); None
    where no trial recorded two epochs or more (one point per trial is no curve)."""
    curves = [t for t in _ranked(summary) if t.get("history")][:top]
    if max((len(t["history"]) for t in curves), default=0) < 2:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.8), layout="constrained")
    axes = figure.add_subplot()
    for trial in curves:
        epochs = range(1, len(trial["history"]) + 1)
        best = trial["name"] == summary.get("best_trial")
        axes.plot(epochs, trial["history"], marker="o", markersize=3, linewidth=2.2 if best else 1.2,
                  label=f"{', '.join(map(str, trial['combination']))} ({100 * trial[OBJECTIVE]:.2f}%)"
                        + (" — best" if best else ""))
    longest = max(len(t["history"]) for t in curves)
    axes.set_xticks(range(1, longest + 1))
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.set_title(f"{label}: learning curves of the best {len(curves)} trials")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    return _png(figure)


def parallel_coordinates(summary: dict, label: str) -> bytes | None:
    """One vertical axis per parameter (its values in grid order) and one for the objective; a line per
    trial, coloured by its validation accuracy, the best drawn on top (PNG)."""
    values, ranked = summary.get("values"), _ranked(summary)
    if not values or not ranked:
        return None
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    names = summary.get("parameters") or [f"parameter {i}" for i in range(1, len(values) + 1)]
    low, high = min(t[OBJECTIVE] for t in ranked), max(t[OBJECTIVE] for t in ranked)
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1e-9)
    colours = colormaps["viridis"]
    axis_count = len(values) + 1
    figure = Figure(figsize=(max(6.0, 1.6 * axis_count), 4.2), layout="constrained")
    axes = figure.add_subplot()

    def height(options: Sequence, value) -> float:
        """A value's place on its axis, 0..1 (a single-valued axis puts it in the middle)."""
        position = [str(o) for o in options].index(str(value))
        return 0.5 if len(options) == 1 else position / (len(options) - 1)

    for trial in reversed(ranked):  # worst first, so the best lines lie on top
        ys = [height(options, v) for options, v in zip(values, trial["combination"])]
        ys.append(0.5 if high == low else (trial[OBJECTIVE] - low) / (high - low))
        best = trial["name"] == summary.get("best_trial")
        axes.plot(range(axis_count), ys, color="tab:red" if best else colours(norm(trial[OBJECTIVE])),
                  linewidth=2.5 if best else 1.0, alpha=1.0 if best else 0.7, zorder=3 if best else 2)
    for i, options in enumerate(values):
        axes.axvline(i, color="black", linewidth=0.8)
        for option in options:
            axes.text(i + 0.03, height(options, option), str(option), fontsize=7, va="center")
    axes.axvline(len(values), color="black", linewidth=0.8)
    for fraction in (0.0, 0.5, 1.0):
        axes.text(len(values) + 0.03, fraction, f"{100 * (low + fraction * (high - low)):.2f}%", fontsize=7,
                  va="center")
    axes.set_xticks(range(axis_count), [*names, "validation accuracy"], fontsize=8)
    axes.set_yticks([])
    axes.set_xlim(-0.2, axis_count - 0.5)
    axes.set_ylim(-0.08, 1.08)
    axes.set_title(f"{label}: parallel coordinates ({len(ranked)} trials; red: the best)")
    figure.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=axes, label="validation accuracy", shrink=0.8)
    return _png(figure)
