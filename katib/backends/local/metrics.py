"""Metrics from a trial's output, read the way Katib's StdOut collector reads them.

Katib's collector (``pkg/metricscollector/v1beta1/file-metricscollector``)
skips a line unless it mentions one of the Experiment's metric names, then
applies every filter regex (``metricsCollectorSpec.source.filter.metricsFormat``,
or Katib's default ``name=value`` filter) and keeps matches whose first group
is a metric name; the second group is the value. The trial controller then
folds the reports of each metric into ``min``, ``max`` and ``latest``
(``getMetrics``), keeping the strings as printed, and picks the objective's
value by its metric strategy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.core.errors import UserError
from components.core.settings import KATIB_DEFAULT_METRICS_FILTER

# Katib's consts.UnavailableMetricValue: what a metric that was never reported reads as.
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class MetricReport:
    """One ``name=value`` match in a line of output."""

    name: str
    value: float
    text: str


def compile_filters(metrics_formats: Sequence[str]) -> list[re.Pattern[str]]:
    """The Experiment's filters, or Katib's default when it sets none."""
    formats = list(metrics_formats) or [KATIB_DEFAULT_METRICS_FILTER]
    filters = []
    for text in formats:
        try:
            pattern = re.compile(text)
        except re.error as error:
            raise UserError(f"metricsFormat filter {text!r} is not a valid regular expression: {error}") from None
        if pattern.groups < 2:
            raise UserError(f"metricsFormat filter {text!r} needs two groups: the metric name, then its value")
        filters.append(pattern)
    return filters


def parse_metric_line(line: str, metric_names: Sequence[str], filters: Sequence[re.Pattern[str]]) -> list[MetricReport]:
    """The reports of the Experiment's metrics in one line of trial output."""
    # Katib's cheap pre-check: a line naming none of the metrics is not matched at all.
    if not any(name in line for name in metric_names):
        return []
    reports = []
    for pattern in filters:
        for match in pattern.finditer(line):
            name, text = (match.group(1) or "").strip(), (match.group(2) or "").strip()
            if name not in metric_names:
                continue
            try:
                value = float(text)
            except ValueError:
                # Katib's default filter also matches "name=" with no number; nothing to record.
                continue
            reports.append(MetricReport(name, value, text))
    return reports


class MetricSummary:
    """Katib's min / max / latest of one metric, as the strings the trial printed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self._min: MetricReport | None = None
        self._max: MetricReport | None = None
        self._latest: MetricReport | None = None

    def add(self, report: MetricReport) -> None:
        self.count += 1
        if self._min is None or report.value < self._min.value:
            self._min = report
        if self._max is None or report.value > self._max.value:
            self._max = report
        self._latest = report

    def value(self, strategy: str) -> float | None:
        """The metric's value under a Katib metric strategy (min, max or latest)."""
        chosen = {"min": self._min, "max": self._max}.get(strategy, self._latest)
        return None if chosen is None else chosen.value

    def as_katib(self) -> dict[str, str]:
        """Katib's ``observation.metrics`` entry: {name, min, max, latest}."""
        return {
            "name": self.name,
            "min": self._min.text if self._min else UNAVAILABLE,
            "max": self._max.text if self._max else UNAVAILABLE,
            "latest": self._latest.text if self._latest else UNAVAILABLE,
        }


class Observation:
    """Everything a trial reported, folded per metric, plus the objective's step history."""

    def __init__(self, metric_names: Iterable[str], objective_metric: str) -> None:
        self.objective_metric = objective_metric
        self.metrics = {name: MetricSummary(name) for name in metric_names}
        # One entry per report of the objective: the "steps" early stopping counts.
        self.objective_history: list[float] = []

    def add(self, report: MetricReport) -> None:
        self.metrics[report.name].add(report)
        if report.name == self.objective_metric:
            self.objective_history.append(report.value)

    @property
    def objective_reported(self) -> bool:
        return bool(self.objective_history)

    def value(self, name: str, strategy: str) -> float | None:
        return self.metrics[name].value(strategy)

    def as_katib(self) -> list[dict[str, str]]:
        return [summary.as_katib() for summary in self.metrics.values()]


def observation_from_history(history: Any, metric_names: Sequence[str], objective_metric: str) -> Observation | None:
    """One report per epoch and metric from ``{metric: [value per epoch]}``; None without objective values.

    The text of each value is Python's shortest round-trip form, so the same
    history always gives the same observation, however many attempts it took.
    """
    if not isinstance(history, Mapping) or not _numbers(history.get(objective_metric)):
        return None
    observation = Observation(metric_names, objective_metric)
    columns = {name: _numbers(history.get(name)) for name in metric_names}
    for epoch in range(max(len(values) for values in columns.values())):
        for name, values in columns.items():
            if epoch < len(values):
                observation.add(MetricReport(name, values[epoch], repr(values[epoch])))
    return observation


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return []
    return [float(v) for v in values]
