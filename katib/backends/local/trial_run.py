"""Run one trial as a subprocess: stream its output, collect metrics, apply the stop rule.

This is the local stand-in for a trial's Job plus Katib's metrics-collector
sidecar: the sidecar tails the training container's output (stdout and stderr
together), parses metrics as they appear, terminates the training process
when an early-stopping rule is met, and the trial controller then decides the
trial's condition from the exit status and the observation.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.core import storage
from katib.backends.local import hooks
from katib.backends.local.collectors import TrialCollection
from katib.backends.local.early_stopping import StoppingRule
from katib.backends.local.files import read_json, utc_timestamp, write_json_atomic
from katib.backends.local.metrics import MetricReport, Observation, observation_from_history, parse_metric_line
from katib.backends.local.processes import process_identity
from katib.backends.local.records import (
    EARLY_STOPPED,
    FAILED,
    REASON_EARLY_STOPPED,
    REASON_FAILED,
    REASON_METRICS_UNAVAILABLE,
    REASON_SUCCEEDED,
    SUCCEEDED,
)
from katib.backends.local.trial_command import TrialCommand

# A terminated trial gets this long to exit before it is killed.
TERMINATE_GRACE_S = 10.0
# Beside the trial's log: how its process ended, written as soon as the sweep learns it. A sweep
# killed before it recorded the trial finishes the trial from this file and the log on resume, as
# Katib's controller reads an ended Job's status, instead of running it again: a trial that is not
# idempotent (one that resumes from its own checkpoint, as PBT's do) would train twice.
ENDED_FILE = "ended.json"


@dataclass
class TrialOutcome:
    state: str
    reason: str
    message: str
    exit_code: int | None
    observation: Observation
    finished_at: str


class ProcessRegistry:
    """The trial processes running now, so an interrupted sweep can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[str]] = set()
        self.closed = threading.Event()

    def add(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.add(process)
        if self.closed.is_set():  # started while the sweep was being interrupted
            terminate(process)

    def discard(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.discard(process)

    def terminate_all(self) -> None:
        self.closed.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            terminate(process)


def run_trial(
    name: str,
    command: TrialCommand,
    log_path: Path,
    metric_names: Sequence[str],
    objective_metric: str,
    filters: Sequence[re.Pattern[str]],
    rule: StoppingRule | None,
    log: Callable[[str], None],
    registry: ProcessRegistry,
    on_start: Callable[[int, str | None], None] = lambda pid, identity: None,
    metrics_file: str | None = None,
    collection: TrialCollection | None = None,
    extra_env: dict[str, str] | None = None,
) -> TrialOutcome:
    """Run the trial to its end and say how it ended, in Katib's terms.

    ``on_start(pid, identity)`` is called as soon as the process exists (the
    runner records it, to find an orphan later). ``metrics_file``, when
    given, is the trial's own per-epoch record (see :func:`read_trial_history`):
    a trial that succeeds is observed from it rather than from its output.
    ``collection`` is the Experiment's metrics collector for this trial (none:
    the StdOut collector); ``extra_env`` is what a Custom collector's
    environment gets beside its container's ``env``.
    """
    observation = Observation(metric_names, objective_metric)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if collection is not None:
        collection.prepare()
    try:
        process = subprocess.Popen(
            command.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # Katib's collector reads both streams as one log
            stdin=subprocess.DEVNULL,
            env=command.env,
            text=True,
            errors="replace",
            bufsize=1,
            # Its own process group: stopped as a whole, and out of reach of the terminal's Ctrl-C.
            start_new_session=True,
        )
    except OSError as error:
        log_path.write_text(f"could not start {command.argv[0]}: {error}\n", encoding="utf-8")
        return TrialOutcome(
            FAILED, REASON_FAILED, f"Trial could not start: {error}", None, observation, utc_timestamp()
        )
    registry.add(process)
    hooks.reached("trial-started")  # the process runs; its pid is not recorded yet
    reads_output = collection is None or collection.reads_output
    stopper = _Stopper(name, process, objective_metric, rule, log)
    tail = collection.follow(stopper.offer) if collection is not None and rule is not None else None
    try:
        on_start(process.pid, process_identity(process.pid))
        _follow_output(name, process, log_path, observation, filters, stopper if reads_output else None, log,
                       parse=reads_output)
        exit_code = process.wait()
        if not registry.closed.is_set():  # not ended by an interruption, which runs it again on resume
            write_json_atomic(log_path.with_name(ENDED_FILE), {"exit_code": exit_code,
                                                               "stopped_by": stopper.stopped_by})
    finally:
        registry.discard(process)
        if tail is not None:
            tail.stop()
    hooks.reached("trial-ended")
    if collection is not None and not registry.closed.is_set():
        observation = collection.collect(observation, extra_env or {})
    return _ended(name, exit_code, stopper.stopped_by, observation, log_path, objective_metric, metric_names, log,
                  metrics_file, collection)


def ended_before_recorded(name: str, log_path: Path, metric_names: Sequence[str], objective_metric: str,
                          filters: Sequence[re.Pattern[str]], log: Callable[[str], None],
                          metrics_file: str | None, collection: TrialCollection,
                          extra_env: dict[str, str]) -> TrialOutcome | None:
    """The outcome of a trial whose process ended before the sweep recorded it, made as :func:`run_trial`
    made it then: from its :data:`ENDED_FILE` and its log (or its collector's files). None: it had not ended."""
    ended = read_json(log_path.with_name(ENDED_FILE))
    if not isinstance(ended, dict):
        return None
    observation = Observation(metric_names, objective_metric)
    if collection.reads_output and log_path.exists():
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
            _observe(line, observation, filters)
    log(f"[{name}] had ended before the sweep stopped (exit status {ended['exit_code']}): recorded from its log")
    observation = collection.collect(observation, extra_env)
    return _ended(name, ended["exit_code"], ended["stopped_by"], observation, log_path, objective_metric,
                  metric_names, log, metrics_file, collection)


def _ended(name: str, exit_code: int, stopped_by: str | None, observation: Observation, log_path: Path,
           objective_metric: str, metric_names: Sequence[str], log: Callable[[str], None],
           metrics_file: str | None, collection: TrialCollection | None) -> TrialOutcome:
    if metrics_file and exit_code == 0 and not stopped_by:
        own = read_trial_history(metrics_file, metric_names, objective_metric)
        if own is not None:
            observation = own
        else:
            log(f"[{name}] no per-epoch metrics in {metrics_file}; its output's metrics are used")
    missing = collection.unavailable_message() if collection is not None else None
    return _outcome(exit_code, observation, stopped_by, objective_metric, log_path, missing)


def read_trial_history(uri: str, metric_names: Sequence[str], objective_metric: str) -> Observation | None:
    """The observation in a trial's own metrics file: JSON with ``history``, a list of values per metric.

    That is what ``study train`` writes last (metrics.json), one value per
    epoch across all attempts of a resumed trial, where its output holds only
    the epochs of the last attempt. None when the file is missing or has no
    objective values.
    """
    try:
        if not storage.exists(uri):
            return None
        data = json.loads(storage.read_text(uri))
    except (OSError, ValueError):
        return None
    history = data.get("history") if isinstance(data, dict) else None
    return observation_from_history(history, metric_names, objective_metric)


def terminate(process: subprocess.Popen[str]) -> None:
    """SIGTERM now (as Katib's collector does), SIGKILL if still running after the grace period."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    timer = threading.Timer(TERMINATE_GRACE_S, _kill_if_running, args=(process,))
    timer.daemon = True
    timer.start()


def _kill_if_running(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    """The trial's whole process group (its id is the trial's pid): its children end too."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        process.send_signal(signum)


class _Stopper:
    """The early-stopping rule applied to the objective's reports, from whichever source the collector reads."""

    def __init__(self, name: str, process: subprocess.Popen[str], objective_metric: str,
                 rule: StoppingRule | None, log: Callable[[str], None]) -> None:
        self.name, self.process, self.objective_metric, self.rule, self.log = name, process, objective_metric, rule, log
        self.stopped_by: str | None = None

    def offer(self, report: MetricReport) -> None:
        if report.name != self.objective_metric or self.rule is None or self.stopped_by:
            return
        if self.rule.should_stop(report.value):
            self.stopped_by = self.rule.describe(self.objective_metric)
            self.log(f"[{self.name}] early stopped: {self.stopped_by}")
            terminate(self.process)


def _follow_output(
    name: str,
    process: subprocess.Popen[str],
    log_path: Path,
    observation: Observation,
    filters: Sequence[re.Pattern[str]],
    stopper: _Stopper | None,
    log: Callable[[str], None],
    parse: bool = True,
) -> None:
    """Copy the output to the log file and ``log``; parse metrics (StdOut collector) and offer them to ``stopper``."""
    assert process.stdout is not None
    with open(log_path, "w", encoding="utf-8") as out:
        for line in process.stdout:
            out.write(line)
            out.flush()
            log(f"[{name}] {line.rstrip()}")
            if not parse:
                continue
            for report in _observe(line, observation, filters):
                if stopper is not None:
                    stopper.offer(report)


def _observe(line: str, observation: Observation, filters: Sequence[re.Pattern[str]]) -> list[MetricReport]:
    """The Experiment's metrics in one output line (StdOut collector), added to ``observation``."""
    reports = parse_metric_line(line, list(observation.metrics), filters)
    for report in reports:
        observation.add(report)
    return reports


def _outcome(
    exit_code: int,
    observation: Observation,
    stopped_by: str | None,
    objective_metric: str,
    log_path: Path,
    missing: str | None = None,
) -> TrialOutcome:
    """Katib's order: early stopped, then a failed Job, then missing metrics, else succeeded."""
    now = utc_timestamp()
    if stopped_by:
        return TrialOutcome(
            EARLY_STOPPED, REASON_EARLY_STOPPED, f"Trial is early stopped: {stopped_by}", exit_code, observation, now
        )
    if exit_code != 0:
        how = f"killed by signal {-exit_code}" if exit_code < 0 else f"exit status {exit_code}"
        last = _last_line(log_path)
        message = f"Trial has failed: {how}" + (f"; last output: {last}" if last else "")
        return TrialOutcome(FAILED, REASON_FAILED, message, exit_code, observation, now)
    if not observation.objective_reported:
        message = missing or f"Metrics are not available: the trial's output has no {objective_metric} value"
        return TrialOutcome(FAILED, REASON_METRICS_UNAVAILABLE, message, exit_code, observation, now)
    return TrialOutcome(SUCCEEDED, REASON_SUCCEEDED, "Trial has succeeded", exit_code, observation, now)


def _last_line(log_path: Path, limit: int = 300) -> str:
    try:
        lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((ln for ln in reversed(lines) if ln), "")
    return last[:limit]
