"""Run a Katib v1beta1 Experiment on this machine, with Optuna, with Katib's semantics.

Katib has no local mode; this is one. The Experiment dict (already validated)
is read as Katib reads it: Optuna suggests parameter assignments the way
Katib's Optuna suggestion service does (hyperband and pbt: as Katib's own services,
katib.backends.local.suggestion_service), each trial runs the trial template's
primary container command as a subprocess, metrics come from its output as
the StdOut collector reads them, median stop ends poor trials early, and the
Experiment ends on the goal, maxTrialCount, maxFailedTrialCount or an
exhausted grid, in Katib's order.

All Optuna calls happen on the calling thread; worker threads only run trial
processes. The run folder holds the Optuna study (a journal file) and one
record per trial, so a run started again with the same folder resumes: finished
trials are kept, one whose process had ended is recorded from its saved end (trial_run.ENDED_FILE),
interrupted ones run again under the same Optuna trial. One
run folder has one sweep at a time (:class:`katib.backends.local.locks.RunFolderLock`).
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from katib.backends.local import hooks
from katib.backends.local.collectors import TrialCollection
from katib.backends.local.conditions import FAILED_CONDITION as EXPERIMENT_FAILED
from katib.backends.local.conditions import (
    REASON_FAILED,
    REASON_RUNNING,
    REASON_SUGGESTION_END_REACHED,
    Completion,
    experiment_completion,
)
from katib.backends.local.conditions import (
    RUNNING as EXPERIMENT_RUNNING,
)
from katib.backends.local.conditions import (
    SUCCEEDED as EXPERIMENT_SUCCEEDED,
)
from katib.backends.local.early_stopping import StoppingRule, median_stop_value, read_early_stopping
from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.files import utc_timestamp
from katib.backends.local.final_results import summary_line, write_final_results
from katib.backends.local.interrupts import InterruptGuard
from katib.backends.local.katib_api import grid_size
from katib.backends.local.metrics import compile_filters
from katib.backends.local.processes import TRIAL_MARKER_ENV, stop_marked, stop_orphan, trial_marker
from katib.backends.local.records import (
    EARLY_STOPPED,
    FAILED,
    LOG_FILE,
    RUNNING,
    SUCCEEDED,
    TrialRecord,
    load_records,
    save_record,
    trial_dir,
)
from katib.backends.local.records import (
    REASON_RUNNING as TRIAL_REASON_RUNNING,
)
from katib.backends.local.restarts import take_over_run_folder
from katib.backends.local.results import ExperimentResult, optimal_trial, write_live_results
from katib.backends.local.samplers import create_sampler
from katib.backends.local.search_space import optuna_search_space, optuna_values, parameter_assignments
from katib.backends.local.services import create_service
from katib.backends.local.spec_checks import check_ends, check_trial_template
from katib.backends.local.study import STUDY_FILE, SweepStudy
from katib.backends.local.suggestion_service import ServiceDriver
from katib.backends.local.trial_command import build_trial_command
from katib.backends.local.trial_run import (
    ENDED_FILE,
    TERMINATE_GRACE_S,
    ProcessRegistry,
    TrialOutcome,
    ended_before_recorded,
    run_trial,
)

# How often the scheduler wakes while trials run (it also wakes when one ends).
POLL_S = 0.5
# Where a trial's name goes in a trial_metrics_file template (Katib's own placeholder).
TRIAL_NAME_PLACEHOLDER = "${trialSpec.Name}"

Log = Callable[[str], None]


class LocalSweep:
    """One run of an Experiment in a run folder: the scheduler and its bookkeeping."""

    def __init__(self, spec: ExperimentSpec, run_dir: Path, log: Log, extra_env: Mapping[str, str],
                 trial_metrics_file: str | None = None) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.log = log
        self.extra_env = dict(extra_env)
        self.trial_metrics_file = trial_metrics_file
        # Everything that can reject the Experiment is built before any trial runs.
        self.search_space = optuna_search_space(spec.parameters)
        self.sampler = create_sampler(spec.algorithm_name, spec.algorithm_settings, spec.parameters)
        self.service_algorithm = create_service(spec, run_dir)  # hyperband, pbt: Katib's own services
        self.service: ServiceDriver | None = None
        self.stopping = read_early_stopping(spec.early_stopping_name, spec.early_stopping_settings)
        self.filters = compile_filters(spec.metrics_filters)
        self.grid_size = grid_size(spec.parameters) if spec.algorithm_name == "grid" else None
        check_ends(spec, self.grid_size is not None or spec.algorithm_name == "hyperband")
        check_trial_template(spec)
        self.registry = ProcessRegistry()
        self.records: dict[str, TrialRecord] = {}
        self.pending: deque[TrialRecord] = deque()  # interrupted trials, to run again first
        self.running: dict[Future[TrialOutcome], TrialRecord] = {}
        self.completion: Completion | None = None
        self.start_time = utc_timestamp()
        self.study: SweepStudy | None = None
        self.guard = InterruptGuard()

    # ---- the run -------------------------------------------------------------

    def run(self, experiment: dict[str, Any], resume_hint: str) -> ExperimentResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.start_time = take_over_run_folder(self.run_dir, self.spec, experiment) or self.start_time
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is logged per trial here
        self.guard.install()
        try:
            return self._run(resume_hint)
        finally:
            self.guard.restore()

    def _run(self, resume_hint: str) -> ExperimentResult:
        executor = ThreadPoolExecutor(max_workers=self.spec.parallel_trial_count, thread_name_prefix="trial")
        try:
            with self.guard.deferred():
                self.study = SweepStudy(self.run_dir, self.spec.name, self.spec.maximize, self.sampler,
                                        self.search_space, self.log)
                if self.service_algorithm is not None:
                    self.service = ServiceDriver(self.service_algorithm, self.spec, self.run_dir)
                self._resume()
                if self.service is not None:  # after _resume: the records on disk are known
                    self.service.reconcile(set(self.records))
            self._schedule(executor)
        except BaseException as error:
            # Ctrl-C, SIGTERM (or a bug): stop the trials, keep them as running so a rerun runs them again.
            self.guard.acknowledge()
            with self.guard.deferred():  # a second Ctrl-C must not cut the cleanup short
                self.registry.terminate_all()
                executor.shutdown(wait=True, cancel_futures=True)
                how = "Interrupted" if isinstance(error, KeyboardInterrupt) else f"Stopped by an error ({error!r})"
                message = f"{how}; to resume, run again with the same run folder: {resume_hint}"
                self._write_live(Completion(EXPERIMENT_RUNNING, REASON_RUNNING, message))
                self.log(f"sweep {self.spec.name}: {message}")
            raise
        executor.shutdown(wait=True)
        result = self._result(self.completion, completion_time=utc_timestamp())
        with self.guard.deferred():
            write_final_results(self.run_dir, result, self.spec, STUDY_FILE)
            self.guard.acknowledge()  # a signal now came after the sweep's end: its results are complete
        self.log(f"experiment {self.spec.name} {result.condition} ({result.reason}): {summary_line(result)}")
        return result

    def _schedule(self, executor: ThreadPoolExecutor) -> None:
        """Start trials while Katib would, wait for them, until the Experiment is complete."""
        while True:
            if self.completion is None:
                self.completion = experiment_completion(
                    self._records(), self.spec, self._suggestions_exhausted(), len(self.running)
                )
                if self.completion is not None and self.running:
                    self.log(f"{self.completion.message}; waiting for {len(self.running)} running trial(s)")
            if self.completion is None:
                self._start_trials(executor)
            if not self.running:
                if self.completion is None:  # nothing runs and nothing can start
                    stuck = self.service.service.stuck(self._records()) if self.service else None
                    self.completion = Completion(EXPERIMENT_FAILED, REASON_FAILED, stuck) if stuck else Completion(
                        EXPERIMENT_SUCCEEDED,
                        REASON_SUGGESTION_END_REACHED,
                        "Experiment has succeeded: no more suggestions",
                    )
                return
            done, _ = wait(list(self.running), timeout=POLL_S, return_when=FIRST_COMPLETED)
            self.guard.check()  # a signal whose exception Python dropped (see InterruptGuard)
            for future in done:
                with self.guard.deferred():  # the trial's end, its record and Optuna's tell: all or none
                    self._trial_ended(self.running.pop(future), future.result())

    def _start_trials(self, executor: ThreadPoolExecutor) -> None:
        while len(self.running) < self.spec.parallel_trial_count:
            with self.guard.deferred():  # Optuna's ask and the new trial's record: all or none
                record = self.pending.popleft() if self.pending else self._new_trial()
                if record is None:
                    return
                self._launch(executor, record)

    def _new_trial(self) -> TrialRecord | None:
        """Ask Optuna for the next assignment, if Katib would create another trial now."""
        records = self._records()
        if self.spec.max_trial_count is not None:
            # Katib keeps completed + active trials within maxTrialCount.
            started = sum(1 for r in records if r.finished) + len(self.running) + len(self.pending)
            if started >= self.spec.max_trial_count:
                return None
        if self.grid_size is not None and len(records) >= self.grid_size:
            return None
        if self.service is not None:
            return self._suggested_trial(records)
        return self._adopt(self.study.ask())

    def _suggested_trial(self, records: list[TrialRecord]) -> TrialRecord | None:
        """The service's next trial, as an Optuna trial with all its values fixed (None: wait or end)."""
        suggestion = self.service.next(records, len(self.running) + len(self.pending))
        if suggestion is None:
            return None
        with warnings.catch_warnings():  # a resource value may lie outside its feasible space, as in Katib
            warnings.simplefilter("ignore", UserWarning)
            trial = self.study.reopen(optuna_values(self.spec.parameters, suggestion.assignments))
        self.service.creating(self._trial_name(trial.number))
        record = self._adopt(trial, suggestion.assignments)
        hooks.reached("suggestion-recorded")
        self.service.created()
        return record

    def _launch(self, executor: ThreadPoolExecutor, record: TrialRecord) -> None:
        collection = self._collection(record.name)
        rule = self._stopping_rule() if collection.applies_stop_rules else None
        # The marker finds this trial's processes should the sweep die before recording its pid.
        env = {**self.extra_env, TRIAL_MARKER_ENV: trial_marker(self.run_dir, record.name)}
        command = build_trial_command(
            self.spec.trial_template, record.name, self.spec.namespace, record.assignments, env,
            path_map=self._path_map(collection, record.name),
        )
        log_path = trial_dir(self.run_dir, record.name) / LOG_FILE
        if record.attempts > 0 and log_path.exists():
            # Keep what the interrupted attempt printed.
            log_path.replace(log_path.with_name(f"stdout.attempt-{record.attempts}.log"))
        log_path.with_name(ENDED_FILE).unlink(missing_ok=True)  # an earlier attempt's end is not this one's
        record.state, record.reason, record.message = RUNNING, TRIAL_REASON_RUNNING, "Trial is running"
        record.started_at, record.finished_at, record.exit_code = utc_timestamp(), "", None
        record.pid = record.pid_identity = None
        record.attempts += 1
        save_record(self.run_dir, record)
        settings = ", ".join(f"{a['name']}={a['value']}" for a in record.assignments)
        note = f" (median stop below {rule.value:g} from step {rule.start_step})" if rule else ""
        self.log(f"[{record.name}] started: {settings}{note}")

        def started(pid: int, identity: str | None) -> None:  # on the trial's thread, before any output
            record.pid, record.pid_identity = pid, identity
            save_record(self.run_dir, record)

        future = executor.submit(
            run_trial, record.name, command, log_path, self.spec.metric_names, self.spec.objective_metric,
            self.filters, rule, self.log, self.registry, started, self._metrics_file(record.name), collection, env,
        )
        self.running[future] = record

    def _collection(self, name: str) -> TrialCollection:
        return TrialCollection(self.spec.metrics_collector, trial_dir(self.run_dir, name), self.spec.metric_names,
                               self.spec.objective_metric, self.filters)

    def _metrics_file(self, name: str) -> str | None:
        return (self.trial_metrics_file or "").replace(TRIAL_NAME_PLACEHOLDER, name) or None

    def _record_ended(self, record: TrialRecord) -> bool:
        """Record a trial whose process ended before the earlier run recorded it (trial_run.ENDED_FILE)."""
        outcome = ended_before_recorded(
            record.name, trial_dir(self.run_dir, record.name) / LOG_FILE, self.spec.metric_names,
            self.spec.objective_metric, self.filters, self.log, self._metrics_file(record.name),
            self._collection(record.name), self.extra_env)
        if outcome is not None:
            self._trial_ended(record, outcome)
        return outcome is not None

    def _trial_ended(self, record: TrialRecord, outcome: TrialOutcome) -> None:
        if self.registry.closed.is_set():
            return  # ended by an interruption: it stays "Running" and runs again on resume
        observation = outcome.observation
        record.state, record.reason, record.message = outcome.state, outcome.reason, outcome.message
        record.exit_code, record.finished_at = outcome.exit_code, outcome.finished_at
        record.metrics = observation.as_katib()
        record.objective_history = list(observation.objective_history)
        strategy = self.spec.metric_strategies[self.spec.objective_metric]
        record.objective_value = observation.value(self.spec.objective_metric, strategy)
        # The record first, then Optuna: a crash in between is repaired on resume.
        save_record(self.run_dir, record)
        hooks.reached("recorded")
        self._tell(record)
        value = "" if record.objective_value is None else f" {self.spec.objective_metric}={record.objective_value:g}"
        self.log(f"[{record.name}] {record.state}{value}: {record.message}")
        self._write_live(None)

    # ---- Optuna ----------------------------------------------------------------

    def _tell(self, record: TrialRecord) -> None:
        """Report a finished trial to Optuna: a value for succeeded ones, a state otherwise.

        Katib tells its suggestion service about succeeded trials only; early
        stopped trials are told as PRUNED and failed ones as FAIL, which Optuna's
        samplers treat as "no value" (or, for pruned, as a partial result).
        """
        if record.state == SUCCEEDED:
            self.study.tell(record.number, record.objective_value)
        elif record.state == EARLY_STOPPED:
            self.study.tell(record.number, state=TrialState.PRUNED)
        elif record.state == FAILED:
            self.study.tell(record.number, state=TrialState.FAIL)

    def _resume(self) -> None:
        """Take over the trials of an earlier run in this folder, repairing what a kill left half done."""
        records = load_records(self.run_dir)
        optuna_trials = self.study.trials()
        if not records and not optuna_trials:
            return
        recorded_numbers = set()
        for record in records:
            self.records[record.name] = record
            recorded_numbers.add(record.number)
            trial = optuna_trials.get(record.number)
            if record.finished:
                if trial is not None and trial.state == TrialState.RUNNING:
                    self._tell(record)  # the earlier run stopped between the record and Optuna
                continue
            if trial is not None and trial.state == TrialState.RUNNING and self._record_ended(record):
                continue
            what = f"trial {record.name}"
            if record.pid is None or not stop_orphan(record.pid, record.pid_identity or "", TERMINATE_GRACE_S,
                                                     self.log, what):
                stop_marked(trial_marker(self.run_dir, record.name), TERMINATE_GRACE_S, self.log, what)
            if trial is None or trial.state != TrialState.RUNNING:
                values = optuna_values(self.spec.parameters, record.assignments)
                record.number = self.study.reopen(values).number
                recorded_numbers.add(record.number)
                save_record(self.run_dir, record)
            self.pending.append(record)
        for number, trial in sorted(optuna_trials.items()):
            if trial.state == TrialState.RUNNING and number not in recorded_numbers:
                # Asked for before a kill, never recorded; perhaps without all its parameters.
                self.pending.append(self._adopt(self.study.complete(trial)))
        self.study.discard_waiting()
        finished = sum(1 for r in self._records() if r.finished)
        self.log(
            f"resuming {self.run_dir}: {finished} finished trial(s) kept,"
            f" {len(self.pending)} interrupted trial(s) to run again"
        )

    def _adopt(self, trial: FrozenTrial, assignments: list[dict[str, str]] | None = None) -> TrialRecord:
        """A record for an Optuna trial: a new one, or one asked for before an interruption but never recorded."""
        record = TrialRecord(
            name=self._trial_name(trial.number),
            number=trial.number,
            assignments=assignments or parameter_assignments(self.spec.parameters, trial.params),
        )
        self.records[record.name] = record
        save_record(self.run_dir, record)
        return record

    # ---- Katib rules -----------------------------------------------------------

    def _stopping_rule(self) -> StoppingRule | None:
        """The median-stop rule a trial created now gets (none before enough trials succeeded)."""
        if self.stopping is None:
            return None
        histories = [r.objective_history for r in self._records() if r.state == SUCCEEDED]
        value = median_stop_value(histories, self.stopping)
        if value is None:
            return None
        return StoppingRule(value=value, start_step=self.stopping.start_step, maximize=self.spec.maximize)

    def _suggestions_exhausted(self) -> bool:
        """A grid has nothing left once every point has a trial, a service once it says so (Katib's suggestion end)."""
        if self.service is not None:
            return self.service.exhausted and not self.service.queue and not self.pending
        return self.grid_size is not None and len(self.records) >= self.grid_size and not self.pending

    def _path_map(self, collection: TrialCollection, trial_name: str) -> Callable[[str], str]:
        """The collector's mount, then the service's (PBT's checkpoint folder), over the trial's paths."""
        service_map = self.service.service.path_map(trial_name) if self.service else None
        return collection.rewrite if service_map is None else (lambda text: service_map(collection.rewrite(text)))

    # ---- results ---------------------------------------------------------------

    def _records(self) -> list[TrialRecord]:
        return sorted(self.records.values(), key=lambda r: r.number)

    def _trial_name(self, number: int) -> str:
        return f"{self.spec.name}-{number:04d}"

    def _result(self, completion: Completion, completion_time: str = "") -> ExperimentResult:
        records = self._records()
        return ExperimentResult(
            name=self.spec.name, condition=completion.condition, reason=completion.reason,
            message=completion.message, trials=records, optimal_trial=optimal_trial(records, self.spec),
            run_dir=self.run_dir, start_time=self.start_time, completion_time=completion_time,
        )

    def _write_live(self, completion: Completion | None) -> None:
        running = Completion(EXPERIMENT_RUNNING, REASON_RUNNING, "Experiment is running")
        write_live_results(self.run_dir, self._result(completion or running))
