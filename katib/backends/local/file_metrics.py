"""Metrics from a trial's metrics file, read the way Katib's File collector reads it.

pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector.go at
v0.19.0 (CollectObservationLog) splits the file into lines, then:

- TEXT: each line goes through the StdOut rules (a line must name a metric, then
  every filter regex, Katib's default ``name=value`` one when none is set);
- JSON: each non-empty line is one JSON object; a metric is the value under its
  name, and only a JSON *string* counts (the Go code asserts ``.(string)``, so
  ``{"accuracy": 0.9}`` reports nothing while ``{"accuracy": "0.9"}`` does, as
  the hypertune logger of Katib's pytorch-mnist example writes it). A line that is
  not a JSON object fails the whole collection.

:class:`FileTail` follows the file while the trial runs, as the collector's
``watchMetricsFile`` does to apply early-stopping rules.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from katib.backends.local.katib_api import JSON_FORMAT
from katib.backends.local.metrics import MetricReport, parse_metric_line


class MetricsFileError(ValueError):
    """The metrics file cannot be read as its format says (Katib's errParseJson)."""


def parse_metrics_lines(
    lines: Sequence[str], file_format: str, metric_names: Sequence[str], filters: Sequence[re.Pattern[str]],
    first_line: int = 1,
) -> list[MetricReport]:
    """The reports in ``lines`` (numbered from ``first_line``, for messages) of a TEXT or JSON metrics file."""
    if file_format != JSON_FORMAT:
        return [report for line in lines for report in parse_metric_line(line, metric_names, filters)]
    reports = []
    for number, line in enumerate(lines, start=first_line):
        reports += json_line_reports(line, metric_names, number)
    return reports


def json_line_reports(line: str, metric_names: Sequence[str], number: int = 0) -> list[MetricReport]:
    """The string-valued metrics of one JSON line; [] for an empty line."""
    if not line:
        return []
    try:
        record = json.loads(line)
    except ValueError as error:
        raise MetricsFileError(f"line {number} is not JSON ({error})") from None
    if not isinstance(record, dict):
        raise MetricsFileError(f"line {number} is a JSON {type(record).__name__}; expected one object per line")
    reports = []
    for name in metric_names:
        text = record.get(name)
        if not isinstance(text, str):
            continue
        try:
            reports.append(MetricReport(name, float(text.strip()), text))
        except ValueError:
            continue  # not a number: nothing Katib's trial controller could fold into min/max
    return reports


def numeric_json_metrics(text: str, metric_names: Sequence[str]) -> list[str]:
    """Metric names a JSON metrics file holds as numbers, which Katib skips: the hint for a user."""
    found: set[str] = set()
    for line in text.split("\n"):
        try:
            record = json.loads(line) if line else None
        except ValueError:
            continue
        if isinstance(record, dict):
            found |= {n for n in metric_names if isinstance(record.get(n), (int, float))
                      and not isinstance(record.get(n), bool)}
    return sorted(found)


def read_metrics_file(
    path: Path, file_format: str, metric_names: Sequence[str], filters: Sequence[re.Pattern[str]]
) -> list[MetricReport]:
    """Every report in the whole file (Katib reads it once the trial's processes have ended)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_metrics_lines(text.split("\n"), file_format, metric_names, filters)


class FileTail:
    """Follow a metrics file in a thread and hand each complete new line's reports to ``on_report``.

    The file may not exist yet (Katib's collector waits for it too). ``stop()``
    ends the thread; lines written after that are not followed (the final
    reading sees them).
    """

    POLL_S = 0.2

    def __init__(self, path: Path, parse: Callable[[str, int], list[MetricReport]],
                 on_report: Callable[[MetricReport], None]) -> None:
        self.path, self.parse, self.on_report = path, parse, on_report
        self._stop = threading.Event()
        self._offset = 0
        self._line_number = 0
        self._partial = b""
        self._thread = threading.Thread(target=self._follow, name=f"tail-{path.name}", daemon=True)

    def start(self) -> FileTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _follow(self) -> None:
        while not self._stop.is_set():
            self._read_new_lines()
            self._stop.wait(self.POLL_S)

    def _read_new_lines(self) -> None:
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        for raw in complete:
            self._line_number += 1
            try:
                reports = self.parse(raw.decode("utf-8", errors="replace"), self._line_number)
            except MetricsFileError:
                continue  # the final reading reports it
            for report in reports:
                self.on_report(report)
