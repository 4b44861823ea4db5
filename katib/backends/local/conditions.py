"""When an Experiment is finished, decided as Katib's experiment controller decides it.

Katib (``experiment/util/status_util.go``) checks, in this order: the
objective goal (any observed trial at or beyond it: Succeeded), the failed
trial count (failed trials, metrics-unavailable ones included, reaching
maxFailedTrialCount: Failed), the completed trial count (succeeded + failed +
early-stopped reaching maxTrialCount: Succeeded), and the suggestion service
running out of suggestions with nothing running (a finished grid: Succeeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.records import FAILED, OBSERVED_STATES, TrialRecord

SUCCEEDED = "Succeeded"
FAILED_CONDITION = "Failed"
RUNNING = "Running"

# Katib's experiment condition reasons.
REASON_GOAL_REACHED = "ExperimentGoalReached"
REASON_MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
REASON_SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
REASON_FAILED = "ExperimentFailed"
REASON_RUNNING = "ExperimentRunning"


@dataclass(frozen=True)
class Completion:
    condition: str
    reason: str
    message: str


def experiment_completion(
    records: Sequence[TrialRecord], spec: ExperimentSpec, suggestions_exhausted: bool, active: int
) -> Completion | None:
    """How the Experiment ends given its trials so far, or None while it goes on."""
    best = best_trial(records, spec)
    if best is not None and goal_reached(best.objective_value, spec):
        return Completion(
            SUCCEEDED,
            REASON_GOAL_REACHED,
            f"Experiment has succeeded because the objective goal has been reached:"
            f" {spec.objective_metric}={best.objective_value:g} in trial {best.name} (goal {spec.goal:g})",
        )
    failed = sum(1 for r in records if r.state == FAILED)
    if spec.max_failed_trial_count is not None and failed != 0 and failed >= spec.max_failed_trial_count:
        return Completion(
            FAILED_CONDITION,
            REASON_FAILED,
            f"Experiment has failed because the max failed trial count has been reached:"
            f" {failed} failed trials, maxFailedTrialCount {spec.max_failed_trial_count}",
        )
    completed = sum(1 for r in records if r.finished)
    if spec.max_trial_count is not None and completed >= spec.max_trial_count:
        return Completion(
            SUCCEEDED,
            REASON_MAX_TRIALS_REACHED,
            f"Experiment has succeeded because the max trial count has been reached: {completed} trials",
        )
    if suggestions_exhausted and active == 0:
        return Completion(
            SUCCEEDED,
            REASON_SUGGESTION_END_REACHED,
            f"Experiment has succeeded because the search space is exhausted: {completed} trials",
        )
    return None


def best_trial(records: Sequence[TrialRecord], spec: ExperimentSpec) -> TrialRecord | None:
    """The trial with the best objective value; the earliest one wins a tie, as in Katib."""
    best = None
    for record in records:
        if record.state not in OBSERVED_STATES or record.objective_value is None:
            continue
        if best is None or _better(record.objective_value, best.objective_value, spec.maximize):
            best = record
    return best


def goal_reached(value: float | None, spec: ExperimentSpec) -> bool:
    if spec.goal is None or value is None:
        return False
    return value >= spec.goal if spec.maximize else value <= spec.goal


def _better(value: float, than: float | None, maximize: bool) -> bool:
    return than is None or (value > than if maximize else value < than)
