"""One stage of Question 2 on this machine: build its Experiment, validate, run it locally, summarise.

The summary (``summary.json``, written last) is what the next stage and the
report read: the winning settings, their grid index in the study's numbering,
and every trial's objective.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from components import storage
from components.errors import UserError
from components.settings import OBJECTIVE_METRIC
from katib.experiments import ExperimentOptions, build_experiment, to_yaml
from katib.spaces import BASE_SETTINGS, get_sweep
from katib.validate import check_experiment

SUMMARY_FILE = "summary.json"
EXPERIMENT_FILE = "experiment.yaml"


class SweepFailed(UserError):
    """No trial of the stage produced the objective metric, so there is no winner to pass on."""


def trial_environment() -> dict[str, str]:
    """Trials run ``study ...``: put this interpreter's scripts folder first on PATH."""
    scripts = str(Path(sys.executable).parent)
    return {"PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def run_sweep_stage(stage: str, data_uri: str, out_dir: str | Path, sweep_settings: dict,
                    fixed: dict[str, str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Run one sweep locally with the profile's ``sweeps`` settings; return (and write) its summary."""
    from katib.local import run_experiment

    sweep = get_sweep(stage)
    out_dir = Path(out_dir)
    storage.check_writable(str(out_dir))
    fixed = {**BASE_SETTINGS, **{k: v for k, v in (fixed or {}).items() if v}}
    opts = ExperimentOptions.from_profile(
        sweep_settings, data_uri=data_uri, output_root=str(out_dir / "outputs"), fixed=fixed,
        parallel_trials=sweep_settings.get("local_parallel_trials") or sweep_settings["parallel_trials"],
        max_trials=(sweep_settings.get("max_trials") or {}).get(stage))
    experiment = build_experiment(sweep, opts)
    check_experiment(experiment)
    storage.write_text(str(out_dir / EXPERIMENT_FILE), to_yaml(experiment))

    result = run_experiment(experiment, out_dir, log=log, extra_env=trial_environment())
    summary = summarize(stage, result, fixed)
    storage.write_text(str(out_dir / SUMMARY_FILE), json.dumps(summary, indent=2))
    return summary


def summarize(stage: str, result, fixed: dict[str, str]) -> dict:
    """The stage's winner in the study's terms, plus every trial's objective."""
    sweep = get_sweep(stage)
    optimal = result.optimal_trial
    if not optimal or not optimal.get("bestTrialName"):
        raise SweepFailed(f"sweep {stage}: no trial produced {OBJECTIVE_METRIC} "
                          f"({result.condition}: {result.reason}; see {result.run_dir})")
    assignments = {a["name"]: a["value"] for a in optimal["parameterAssignments"]}
    combination = sweep.combination(assignments)
    # objective_value is the value Katib's metric strategy picks (max of val_accuracy); None if unavailable.
    trials = [{
        "name": record.name, "state": record.state, "reason": record.reason,
        "combination": list(sweep.combination(record.assignment_values)),
        "index": sweep.index_of(sweep.combination(record.assignment_values)),
        OBJECTIVE_METRIC: record.objective_value,
    } for record in result.trials]
    best = next(t for t in trials if t["name"] == optimal["bestTrialName"])
    return {
        "stage": stage,
        "description": sweep.description,
        "fixed": fixed,
        "best": {**fixed, **sweep.settings(assignments)},
        "best_combination": list(combination),
        "best_index": sweep.index_of(combination),
        "best_trial": optimal["bestTrialName"],
        OBJECTIVE_METRIC: best[OBJECTIVE_METRIC],
        "grid_size": sweep.grid_size,
        "condition": result.condition,
        "reason": result.reason,
        "trials": trials,
    }
