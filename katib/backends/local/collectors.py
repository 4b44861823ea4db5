"""One trial's metrics collection: Katib's collector sidecar, for a local trial process.

- StdOut: the trial's output is parsed as it appears (:mod:`katib.backends.local.trial_run`).
- File: the file at ``source.fileSystemPath.path`` is followed while the trial
  runs (for early-stopping rules, as Katib's ``watchMetricsFile``) and read whole
  once it has ended (``CollectObservationLog``): that reading is the observation.
- TensorFlowEvent: the event files under the directory are read once the trial has ended.
- Custom: Katib runs the user's container beside the trial, and it reports to
  Katib's DB itself. Locally there is no DB: its command + args run once the
  trial has ended, in the same shared folder, and its output is read with the
  StdOut rules (the Experiment's filters, else ``name=value``). That is the one
  difference: a collector that must watch the trial while it runs sees a trial
  that has already ended.

The collector's path is a folder of the trial's own (:class:`katib.backends.local.mounts.TrialMount`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from katib.backends.local.collector_spec import CollectorSpec
from katib.backends.local.file_metrics import (
    FileTail,
    MetricsFileError,
    numeric_json_metrics,
    parse_metrics_lines,
    read_metrics_file,
)
from katib.backends.local.katib_api import CUSTOM_COLLECTOR, FILE_COLLECTOR, JSON_FORMAT, TFEVENT_COLLECTOR
from katib.backends.local.metrics import MetricReport, Observation, parse_metric_line
from katib.backends.local.mounts import TrialMount
from katib.backends.local.tfevent_metrics import read_event_files
from katib.backends.local.trial_command import container_argv, container_env

COLLECTOR_LOG = "collector.log"
# A Custom collector that has not finished this long after its trial is stopped.
CUSTOM_COLLECTOR_TIMEOUT_S = 600.0


class TrialCollection:
    """How the metrics of one trial are collected, and what went wrong when none were."""

    def __init__(self, spec: CollectorSpec, trial_folder: Path, metric_names: Sequence[str],
                 objective_metric: str, filters: Sequence[re.Pattern[str]]) -> None:
        self.spec = spec
        self.trial_folder = trial_folder
        self.metric_names = list(metric_names)
        self.objective_metric = objective_metric
        self.filters = list(filters)
        self.mount = TrialMount(spec.mount_path, trial_folder) if spec.mount_path else None
        self.problem: str | None = None  # why no metrics could be read, for the trial's message

    @property
    def reads_output(self) -> bool:
        return self.spec.reads_output

    @property
    def applies_stop_rules(self) -> bool:
        return self.spec.applies_stop_rules

    def rewrite(self, text: str) -> str:
        """A container path in the trial's command, moved to this trial's folder (see TrialMount)."""
        return self.mount.rewrite(text) if self.mount else text

    def prepare(self) -> None:
        if self.mount:
            self.mount.prepare()

    def local_path(self) -> Path | None:
        return self.mount.local(self.spec.path) if self.mount and self.spec.path else None

    def follow(self, on_report: Callable[[MetricReport], None]) -> FileTail | None:
        """A follower of the metrics file while the trial runs (File collector only)."""
        if self.spec.kind != FILE_COLLECTOR:
            return None

        def parse(line: str, number: int) -> list[MetricReport]:
            return parse_metrics_lines([line], self.spec.file_format, self.metric_names, self.filters, number)

        return FileTail(self.local_path(), parse, on_report).start()

    def collect(self, from_output: Observation, extra_env: Mapping[str, str]) -> Observation:
        """The trial's observation, once it has ended; sets :attr:`problem` when the source gave nothing."""
        if self.spec.kind == FILE_COLLECTOR:
            return self._observed(self._file_reports())
        if self.spec.kind == TFEVENT_COLLECTOR:
            directory = self.local_path()
            if not directory.is_dir():
                self.problem = f"the trial wrote no event files under {self.spec.path} (locally {directory})"
                return self._observed([])
            reports = read_event_files(directory, self.metric_names)
            if not any(r.name == self.objective_metric for r in reports):
                self.problem = (f"no event file under {self.spec.path} (locally {directory}) has a scalar tag"
                                f" for {self.objective_metric}")
            return self._observed(reports)
        if self.spec.kind == CUSTOM_COLLECTOR:
            return self._observed(self._custom_reports(extra_env))
        return from_output

    def unavailable_message(self) -> str:
        """Katib's "Metrics are not available" reason, with what locally is known about it."""
        if self.problem:
            return f"Metrics are not available: {self.problem}"
        source = {FILE_COLLECTOR: f"the metrics file {self.spec.path}",
                  CUSTOM_COLLECTOR: "the Custom collector's output"}.get(self.spec.kind, "the trial's output")
        return f"Metrics are not available: {source} has no {self.objective_metric} value"

    # ---- sources -----------------------------------------------------------------

    def _file_reports(self) -> list[MetricReport]:
        path = self.local_path()
        if not path.is_file():
            self.problem = f"the trial wrote no metrics file {self.spec.path} (locally {path})"
            return []
        try:
            reports = read_metrics_file(path, self.spec.file_format, self.metric_names, self.filters)
        except MetricsFileError as error:
            self.problem = f"the JSON metrics file {self.spec.path}: {error}"
            return []
        if self.spec.file_format == JSON_FORMAT and not any(r.name == self.objective_metric for r in reports):
            numeric = numeric_json_metrics(path.read_text(encoding="utf-8", errors="replace"), self.metric_names)
            if numeric:
                self.problem = (f"the JSON metrics file {self.spec.path} holds {', '.join(numeric)} as JSON"
                                " numbers; Katib's File collector reads only string values, e.g. \"0.91\"")
        return reports

    def _custom_reports(self, extra_env: Mapping[str, str]) -> list[MetricReport]:
        container = self.spec.custom_container or {}
        argv = [self.rewrite(part) for part in container_argv(container)]
        collector_env = {k: self.rewrite(v) for k, v in container_env(container, extra_env).items()}
        log_path = self.trial_folder / COLLECTOR_LOG
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=collector_env, text=True, errors="replace",
                                  timeout=CUSTOM_COLLECTOR_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            self.problem = f"the Custom collector {container.get('name')!r} did not run to its end: {error}"
            return []
        log_path.write_text(done.stdout, encoding="utf-8")
        if done.returncode != 0:
            self.problem = (f"the Custom collector {container.get('name')!r} exited with status {done.returncode}"
                            f" (its output: {log_path})")
            return []
        return [r for line in done.stdout.splitlines()
                for r in parse_metric_line(line, self.metric_names, self.filters)]

    def _observed(self, reports: list[MetricReport]) -> Observation:
        observation = Observation(self.metric_names, self.objective_metric)
        for report in reports:
            observation.add(report)
        return observation
