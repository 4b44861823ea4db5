"""Taking over a run folder: the same search only, and a finished Experiment only as Katib restarts it.

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

import json
from pathlib import Path
from typing import Any

from components.core.errors import UserError
from katib.backends.local.experiment_spec import ExperimentSpec, search_fingerprint
from katib.backends.local.files import read_json, write_json_atomic
from katib.backends.local.results import STATUS_JSON

EXPERIMENT_FILE = "experiment.json"

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


def take_over_run_folder(run_dir: Path, spec: ExperimentSpec, experiment: dict[str, Any]) -> str | None:
    """Refuse a folder that holds a different search or a finished run Katib would not restart;
    record this Experiment there. Returns the earlier run's start time, if any."""
    path = run_dir / EXPERIMENT_FILE
    fingerprint = json.loads(json.dumps(search_fingerprint(spec), default=str))
    stored = read_json(path)
    if stored is not None and stored.get("fingerprint") != fingerprint:
        raise UserError(
            f"{run_dir} holds a run of a different search (parameters, objective or algorithm"
            " changed); use a new run folder"
        )
    previous = read_json(run_dir / STATUS_JSON) or {}
    experiment_json = json.loads(json.dumps(experiment, default=str))
    check_restart((stored or {}).get("experiment"), previous, experiment_json)
    write_json_atomic(path, {"fingerprint": fingerprint, "experiment": experiment_json})
    return (previous.get("status") or {}).get("startTime")
