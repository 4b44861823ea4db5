"""When a finished Experiment may run again in its run folder: Katib's restart rule.

Katib's webhook (``pkg/webhook/v1beta1/experiment/validator/validator.go``,
``validateExperiment`` with an old object) refuses to change a completed
Experiment unless it is restartable, which ``IsCompletedExperimentRestartable``
(``pkg/controller.v1beta1/experiment/util/status_util.go``) grants only to an
Experiment that Succeeded by reaching maxTrialCount and has resumePolicy
LongRunning or FromVolume; the new maxTrialCount must also exceed the trials
it already has. Locally, "changed" means maxTrialCount or
maxFailedTrialCount changed (the counts that start trials again); an
interrupted run is not completed and always resumes.
"""

from __future__ import annotations

from typing import Any

from components.errors import UserError

# Katib's default (experiment_defaults.go) when the Experiment sets none.
DEFAULT_RESUME_POLICY = "Never"
RESTARTABLE_POLICIES = ("LongRunning", "FromVolume")
COMPLETED_CONDITIONS = ("Succeeded", "Failed")
MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
RESTART_FIELDS = ("maxTrialCount", "maxFailedTrialCount")


def check_restart(previous: dict[str, Any] | None, status: dict[str, Any] | None, experiment: dict[str, Any]) -> None:
    """Refuse, as Katib would, to restart the finished ``previous`` Experiment as ``experiment``."""
    if not previous or not status or status.get("condition") not in COMPLETED_CONDITIONS:
        return
    old_spec, new_spec = previous.get("spec") or {}, experiment.get("spec") or {}
    changed = [key for key in RESTART_FIELDS if _count(old_spec.get(key)) != _count(new_spec.get(key))]
    if not changed:
        return
    policy = old_spec.get("resumePolicy") or DEFAULT_RESUME_POLICY
    restartable = (
        status.get("condition") == "Succeeded"
        and status.get("reason") == MAX_TRIALS_REACHED
        and policy in RESTARTABLE_POLICIES
    )
    if not restartable:
        raise UserError(
            f"the Experiment finished ({status.get('condition')}: {status.get('reason')}) with resumePolicy"
            f" {policy}; Katib restarts a finished Experiment with a changed {' and '.join(changed)} only"
            f" after ExperimentMaxTrialsReached with resumePolicy {' or '.join(RESTARTABLE_POLICIES)};"
            " use a new run folder"
        )
    trials = int((status.get("status") or {}).get("trials") or 0)
    new_max = _count(new_spec.get("maxTrialCount"))
    if new_max is not None and new_max <= trials:
        raise UserError(f"spec.maxTrialCount {new_max} must be greater than the {trials} trials the Experiment has")


def _count(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
