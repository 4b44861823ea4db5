"""The outcome of a local Experiment, in Katib's shapes, and the files it is written to.

``optimal_trial`` has the shape of Katib's ``status.currentOptimalTrial``, and
``experiment_status.json`` holds a Katib-like ``status`` (conditions, trial
counts and lists), so code that reads a cluster Experiment's status reads a
local run the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katib.backends.local.conditions import best_trial
from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.files import utc_timestamp, write_json_atomic, write_text_atomic
from katib.backends.local.records import (
    EARLY_STOPPED,
    FAILED,
    PENDING,
    REASON_METRICS_UNAVAILABLE,
    RUNNING,
    SUCCEEDED,
    TrialRecord,
)

TRIALS_CSV = "trials.csv"
TRIALS_JSON = "trials.json"
OPTIMAL_TRIAL_JSON = "optimal_trial.json"
STATUS_JSON = "experiment_status.json"


@dataclass
class ExperimentResult:
    name: str
    condition: str  # "Succeeded" or "Failed" ("Running" only for an interrupted run)
    reason: str  # Katib's reason, e.g. ExperimentGoalReached, ExperimentMaxTrialsReached
    message: str
    trials: list[TrialRecord]
    optimal_trial: dict[str, Any] | None  # Katib's status.currentOptimalTrial
    run_dir: Path
    start_time: str = ""
    completion_time: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def trials_in(self, state: str) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == state]

    @property
    def succeeded(self) -> bool:
        return self.condition == "Succeeded"

    def status(self) -> dict[str, Any]:
        """A Katib-like Experiment ``status``."""
        # Katib's lists exclude each other: a trial whose metrics are unavailable is in that list,
        # not in failedTrialList (updateTrialsSummary, experiment/util/status_util.go).
        unavailable = [t.name for t in self.trials if t.reason == REASON_METRICS_UNAVAILABLE]
        names = {
            state: [t.name for t in self.trials_in(state) if t.name not in unavailable]
            for state in (SUCCEEDED, FAILED, EARLY_STOPPED, RUNNING, PENDING)
        }
        return {
            "conditions": [
                {
                    "type": self.condition,
                    "status": "True",
                    "reason": self.reason,
                    "message": self.message,
                    "lastUpdateTime": self.completion_time or utc_timestamp(),
                }
            ],
            "startTime": self.start_time,
            "completionTime": self.completion_time,
            "currentOptimalTrial": self.optimal_trial or empty_optimal_trial(),
            "trials": len(self.trials),
            "trialsSucceeded": len(names[SUCCEEDED]),
            "trialsFailed": len(names[FAILED]),
            "trialsEarlyStopped": len(names[EARLY_STOPPED]),
            "trialsRunning": len(names[RUNNING]),
            "trialsPending": len(names[PENDING]),
            "trialMetricsUnavailable": len(unavailable),
            "succeededTrialList": names[SUCCEEDED],
            "failedTrialList": names[FAILED],
            "earlyStoppedTrialList": names[EARLY_STOPPED],
            "runningTrialList": names[RUNNING],
            "pendingTrialList": names[PENDING],
            "metricsUnavailableTrialList": unavailable,
        }


def optimal_trial(records: Sequence[TrialRecord], spec: ExperimentSpec) -> dict[str, Any] | None:
    """Katib's currentOptimalTrial for these trials, or None when no trial has an objective value."""
    best = best_trial(records, spec)
    if best is None:
        return None
    return {
        "bestTrialName": best.name,
        "parameterAssignments": [dict(a) for a in best.assignments],
        "observation": {"metrics": [dict(m) for m in best.metrics]},
    }


def empty_optimal_trial() -> dict[str, Any]:
    """What Katib's currentOptimalTrial holds before any trial has a value."""
    return {"bestTrialName": "", "parameterAssignments": [], "observation": {"metrics": []}}


def trial_table(records: Sequence[TrialRecord], spec: ExperimentSpec) -> tuple[list[str], list[list[Any]]]:
    """One row per trial: name, state, parameters, metrics (by their strategies), reason."""
    columns = ["trial", "state", *spec.parameter_names, *spec.metric_names, "reason", "started_at", "finished_at"]
    rows = []
    for record in records:
        values = record.assignment_values
        metrics = [_metric_value(record, name, spec) for name in spec.metric_names]
        rows.append(
            [
                record.name,
                record.state,
                *[values.get(p, "") for p in spec.parameter_names],
                *metrics,
                record.reason,
                record.started_at,
                record.finished_at,
            ]
        )
    return columns, rows


def write_live_results(run_dir: Path, result: ExperimentResult) -> None:
    """The small JSON files, rewritten after every trial so a run can be watched."""
    write_json_atomic(run_dir / TRIALS_JSON, [t.to_dict() for t in result.trials])
    write_json_atomic(run_dir / OPTIMAL_TRIAL_JSON, result.optimal_trial or empty_optimal_trial())
    write_json_atomic(
        run_dir / STATUS_JSON,
        {
            "name": result.name,
            "condition": result.condition,
            "reason": result.reason,
            "message": result.message,
            "status": result.status(),
            "files": result.files,
        },
    )


def write_trials_csv(path: Path, records: Sequence[TrialRecord], spec: ExperimentSpec) -> None:
    columns, rows = trial_table(records, spec)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    write_text_atomic(path, buffer.getvalue())


def _metric_value(record: TrialRecord, name: str, spec: ExperimentSpec) -> float | str | None:
    """The value of one metric under its strategy, from the record's Katib observation."""
    if name == spec.objective_metric:
        return record.objective_value
    strategy = spec.metric_strategies.get(name, "latest")
    for metric in record.metrics:
        if metric["name"] == name:
            text = metric.get(strategy, "unavailable")
            if text == "unavailable":
                text = metric.get("latest", "unavailable")
            try:
                return float(text)
            except ValueError:
                return None
    return None
