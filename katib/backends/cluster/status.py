"""An Experiment's status as Katib's controller writes it, read into a :class:`LaunchResult`.

Katib copies the trial counts and the best trial into the Experiment's status, so the launcher
follows a sweep by reading that one object (katib/backends/cluster/lifecycle.py); the per-trial
table comes from the Trials themselves (trials.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from katib.backends.base import TrialRow


# Katib's ExperimentConditionType values are Created, Running, Restarting, Succeeded and
# Failed; an Experiment is finished once Succeeded or Failed has status "True"
# (experiments/v1beta1 IsCompleted).
SUCCEEDED, FAILED = "Succeeded", "Failed"
FINISHED_CONDITIONS = (SUCCEEDED, FAILED)

# Trial counts as this module reports them, from Katib's ExperimentStatus fields.
TRIAL_COUNT_FIELDS = {
    "succeeded": "trialsSucceeded",
    "failed": "trialsFailed",
    "running": "trialsRunning",
    "pending": "trialsPending",
    "earlyStopped": "trialsEarlyStopped",
    "killed": "trialsKilled",
    "metricsUnavailable": "trialMetricsUnavailable",
    "total": "trials",
}
ALWAYS_SHOWN_COUNTS = ("succeeded", "failed", "running")

# The label katib.experiments puts on each sweep's Experiment; it names the components.sweeps sweep.
SWEEP_LABEL = "fmstudy/sweep"

# What Katib writes for a metric a trial never reported (pkg/controller.v1beta1/consts/const.go
# UnavailableMetricValue, v0.19.0).
UNAVAILABLE = "unavailable"

Log = Callable[[str], None]


# ---------------------------------------------------------------- the result


@dataclass
class LaunchResult:
    name: str
    namespace: str
    condition: str  # Succeeded or Failed; the latest condition (Created, Running) after a timeout
    reason: str  # Katib's reason, e.g. ExperimentMaxTrialsReached, ExperimentGoalReached
    message: str
    optimal_trial: dict[str, Any]  # Katib's status.currentOptimalTrial
    assignments: dict[str, str]  # its parameterAssignments as {name: value}
    trials: dict[str, int]  # succeeded, failed, running, pending, earlyStopped, killed, ...
    objective: str = ""  # the objective metric's name
    objective_value: float | None = None  # the best trial's value by the metric's strategy
    sweep: str | None = None  # the components.sweeps sweep named by the fmstudy/sweep label
    reused: bool = False  # an existing Experiment with the same spec was waited on
    deleted: bool = False
    trial_rows: list[TrialRow] | None = None  # its Trials, when asked for (launch_experiment's list_trials)

    @property
    def succeeded(self) -> bool:
        return self.condition == SUCCEEDED

    def settings(self) -> dict[str, str]:
        """The winning assignments as trial settings ({'optimizer': 'Nadam'}); {} without a sweep label."""
        if not self.sweep or not self.assignments:
            return {}
        from components.sweeps import get_sweep

        return get_sweep(self.sweep).settings(self.assignments)

    def outputs(self) -> dict[str, Any]:
        """What the next step consumes (``--outputs-json``)."""
        outputs = {key: value for key, value in asdict(self).items()
                   if key not in ("reused", "deleted", "trial_rows")}
        if self.sweep:
            outputs["settings"] = self.settings()
        return outputs


def experiment_result(experiment: dict, **flags: bool) -> LaunchResult:
    """A LaunchResult from an Experiment object as the API server returns it."""
    metadata = experiment.get("metadata") or {}
    status = experiment.get("status") or {}
    objective = (experiment.get("spec") or {}).get("objective") or {}
    condition = finished_condition(status) or latest_condition(status) or {}
    optimal = status.get("currentOptimalTrial") or {}
    return LaunchResult(
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        condition=condition.get("type", ""),
        reason=condition.get("reason", ""),
        message=condition.get("message", ""),
        optimal_trial=optimal,
        assignments=parameter_assignments(optimal),
        trials=trial_counts(status),
        objective=objective.get("objectiveMetricName", ""),
        objective_value=objective_value(optimal, objective),
        sweep=(metadata.get("labels") or {}).get(SWEEP_LABEL),
        **flags,
    )


# ---------------------------------------------------------------- reading a status


def latest_condition(status: dict) -> dict | None:
    """The last condition Katib set to True (it appends them in order: Created, Running, ...)."""
    true = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    return true[-1] if true else None


def finished_condition(status: dict) -> dict | None:
    """The Succeeded or Failed condition when it is True, else None (still going)."""
    for condition in status.get("conditions") or []:
        if condition.get("type") in FINISHED_CONDITIONS and condition.get("status") == "True":
            return condition
    return None


def trial_counts(status: dict) -> dict[str, int]:
    # Katib omits a zero count (omitempty), so a missing field is 0.
    return {name: int(status.get(field) or 0) for name, field in TRIAL_COUNT_FIELDS.items()}


def parameter_assignments(optimal_trial: dict) -> dict[str, str]:
    return {a["name"]: a["value"] for a in optimal_trial.get("parameterAssignments") or [] if "name" in a}


def objective_value(optimal_trial: dict, objective: dict) -> float | None:
    """The best trial's objective, read as Katib reads it: max when maximizing, min when minimizing,
    unless spec.objective.metricStrategies names another strategy."""
    return metric_value(optimal_trial.get("observation"), objective)


def metric_strategy(objective: dict) -> str:
    """The objective metric's strategy (min, max or latest): metricStrategies' entry, else the type's default."""
    name = objective.get("objectiveMetricName")
    strategy = {"maximize": "max", "minimize": "min"}.get(objective.get("type"), "latest")
    for item in objective.get("metricStrategies") or []:
        if item.get("name") == name:
            strategy = item.get("value", strategy)
    return strategy


def metric_value(observation: dict | None, objective: dict) -> float | None:
    """The objective metric's value in an observation ({metrics: [{name, min, max, latest}]}) by its strategy.

    As Katib picks it (pkg/controller.v1beta1/experiment/util/status_util.go, getObjectiveMetricValue,
    v0.19.0): a min or max that is "unavailable" falls back to the latest value.
    """
    name, strategy = objective.get("objectiveMetricName"), metric_strategy(objective)
    for metric in (observation or {}).get("metrics") or []:
        if metric.get("name") == name:
            value = metric.get(strategy)
            if strategy in ("min", "max") and value == UNAVAILABLE:
                value = metric.get("latest")
            try:
                return float(value)
            except (TypeError, ValueError):  # "unavailable": the trial reported none
                return None
    return None


def progress_line(experiment: dict) -> str:
    """One line: where the Experiment is, its trial counts, its best trial so far."""
    result = experiment_result(experiment)
    counts = ", ".join(f"{result.trials[k]} {k}" for k in TRIAL_COUNT_FIELDS
                       if k != "total" and (k in ALWAYS_SHOWN_COUNTS or result.trials[k]))
    line = f"katib: {result.namespace}/{result.name} {result.condition or 'waiting for Katib'}: {counts}"
    if result.objective_value is not None:
        line += f"; best {result.objective}={result.objective_value:.4f} ({result.optimal_trial.get('bestTrialName')})"
    return line


class ProgressLog:
    """Logs a progress line when the condition or the trial counts change, not on every event."""

    def __init__(self, log: Log):
        self.log = log
        self._last: tuple | None = None
        self.latest: dict | None = None  # the Experiment as last seen

    def update(self, experiment: dict) -> bool:
        """Record the Experiment as seen now; True when it has finished."""
        self.latest = experiment
        status = experiment.get("status") or {}
        state = (latest_condition(status) or {}).get("type")
        key = (state, tuple(trial_counts(status).items()))
        if key != self._last:
            self._last = key
            self.log(progress_line(experiment))
        return finished_condition(status) is not None


def counts_summary(trials: dict[str, int]) -> str:
    shown = [k for k in TRIAL_COUNT_FIELDS if k != "total" and (k in ALWAYS_SHOWN_COUNTS or trials.get(k))]
    return "trials: " + ", ".join(f"{trials.get(k, 0)} {k}" for k in shown)

