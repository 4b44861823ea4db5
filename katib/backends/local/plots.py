"""Pictures of a sweep: the objective chart (PNG) and a sortable trials table (HTML).

The chart answers the study's question directly: with one categorical
parameter (an optimizer sweep) it is a bar per value, like the study's table
of optimizer -> accuracy; with several parameters it is every trial's
objective, best first. matplotlib is used through ``Figure`` only, so no
pyplot state or GUI backend is touched (the Agg canvas renders the PNG).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.files import write_atomic, write_text_atomic
from katib.backends.local.katib_api import CATEGORICAL, DISCRETE
from katib.backends.local.records import OBSERVED_STATES, TrialRecord
from katib.backends.local.search_space import parameter_type

OBJECTIVE_PNG = "objective.png"
TRIALS_HTML = "trials.html"
# Past this many trials the per-trial chart drops its trial-name labels.
MAX_LABELLED_TRIALS = 40


def write_objective_plot(path: Path, records: Sequence[TrialRecord], spec: ExperimentSpec) -> bool:
    """Draw the objective chart into ``path``; False when no trial has an objective value."""
    observed = [r for r in records if r.state in OBSERVED_STATES and r.objective_value is not None]
    if not observed:
        return False
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    single = spec.parameters[0] if len(spec.parameters) == 1 else None
    if single is not None and parameter_type(single) in (CATEGORICAL, DISCRETE):
        _bars_per_value(axes, observed, spec, single)
    else:
        _objective_per_trial(axes, observed, spec)
    axes.grid(axis="y", alpha=0.3)
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    return True


def _bars_per_value(axes: Any, observed: Sequence[TrialRecord], spec: ExperimentSpec, parameter: dict) -> None:
    """Best objective per value of the one parameter, in the Experiment's list order."""
    name = parameter["name"]
    best: dict[str, float] = {}
    for record in observed:
        value = record.assignment_values[name]
        current = best.get(value)
        if current is None or (record.objective_value > current if spec.maximize else record.objective_value < current):
            best[value] = record.objective_value
    order = [str(v) for v in parameter["feasibleSpace"]["list"] if str(v) in best]
    heights = [best[v] for v in order]
    winner = (max if spec.maximize else min)(heights)
    colors = ["tab:orange" if h == winner else "tab:blue" for h in heights]
    bars = axes.bar(order, heights, color=colors)
    axes.bar_label(bars, labels=[f"{h:.4g}" for h in heights], padding=2, fontsize=8)
    axes.set_xlabel(name)
    axes.set_ylabel(spec.objective_metric)
    axes.set_title(f"{spec.name}: {spec.objective_metric} by {name}")
    _zoom_to_values(axes, heights)


def _objective_per_trial(axes: Any, observed: Sequence[TrialRecord], spec: ExperimentSpec) -> None:
    ranked = sorted(observed, key=lambda r: r.objective_value, reverse=spec.maximize)
    heights = [r.objective_value for r in ranked]
    colors = ["tab:orange"] + ["tab:blue"] * (len(ranked) - 1)
    axes.bar(range(len(ranked)), heights, color=colors)
    if len(ranked) <= MAX_LABELLED_TRIALS:
        # A bar is read by its settings; the trial name is in trials.html beside them.
        labels = [_shorten(" / ".join(r.assignment_values.values())) for r in ranked]
        axes.set_xticks(range(len(ranked)), labels, rotation=60, ha="right", fontsize=7)
    axes.set_xlabel(f"trial ({' / '.join(spec.parameter_names)}), best first")
    axes.set_ylabel(spec.objective_metric)
    axes.set_title(f"{spec.name}: {spec.objective_metric} per trial, best first")
    _zoom_to_values(axes, heights)


def _shorten(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _zoom_to_values(axes: Any, heights: Sequence[float]) -> None:
    """Accuracies that differ in the third digit need the axis zoomed onto them."""
    low, high = min(heights), max(heights)
    margin = (high - low) * 0.25 or abs(high) * 0.05 or 1.0
    axes.set_ylim(low - margin, high + margin)


def write_trials_html(
    path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str, summary: str
) -> None:
    """A self-contained HTML table, sortable by clicking a column header."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    page = _PAGE.format(
        title=html.escape(title), summary=html.escape(summary), head=head, body=body, script=_SORT_SCRIPT
    )
    write_text_atomic(path, page)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_SORT_SCRIPT = """
document.querySelectorAll("th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var ascending = th.dataset.order !== "asc";
    table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = ascending ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var numeric = x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny);
      var order = numeric ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
th {{ background: #f0f0f0; cursor: pointer; user-select: none; }}
th[data-order="asc"]::after {{ content: " \\25B2"; }}
th[data-order="desc"]::after {{ content: " \\25BC"; }}
tr:nth-child(even) {{ background: #fafafa; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{summary}</p>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<script>{script}</script>
</body>
</html>
"""
