"""Losses are read by their minimum, accuracies by their maximum, whatever Katib would default to.

Katib's defaulting webhook fills a strategy for every metric the Experiment leaves out, and gives
each the objective type's strategy: "max" under a maximize objective, "min" under minimize, else
"latest" (kubeflow/katib pkg/apis/controller/experiments/v1beta1/experiment_defaults.go,
setDefaultObjective, v0.19.0: the version kind_e2e.sh installs). katib_defaults() below does the
same, so the test reads each Experiment as Katib will hold it.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from components.core.settings import ADDITIONAL_METRICS, OBJECTIVE_METRIC
from components.profile_check import load_profile
from components.sweeps import SWEEPS
from katib.experiments import ExperimentOptions, build_experiment
from tests.fixtures.kustomize import REPO

EXPERIMENT_FILES = sorted((REPO / "katib" / "experiments").glob("*.yaml")) + sorted(
    (REPO / "katib" / "experiments" / "gpu").glob("*.yaml"))
EXPECTED = {"val_accuracy": "max", "accuracy": "max", "loss": "min", "val_loss": "min"}


def katib_defaults(objective: dict) -> dict[str, str]:
    """{metric: strategy} after Katib's setDefaultObjective."""
    strategies = {s["name"]: s["value"] for s in objective.get("metricStrategies") or []}
    default = {"minimize": "min", "maximize": "max"}.get(objective.get("type"), "latest")
    for metric in [objective["objectiveMetricName"], *(objective.get("additionalMetricNames") or [])]:
        strategies.setdefault(metric, default)
    return strategies


def test_katibs_default_would_read_the_worst_loss():
    # Why the strategies are spelled out: left to Katib, a maximize objective reads loss by its max.
    objective = {"type": "maximize", "objectiveMetricName": OBJECTIVE_METRIC,
                 "additionalMetricNames": list(ADDITIONAL_METRICS)}
    assert katib_defaults(objective)["loss"] == katib_defaults(objective)["val_loss"] == "max"


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.relative_to(REPO / "katib").as_posix())
def test_checked_in_experiments_read_losses_by_their_minimum(path):
    objective = yaml.safe_load(path.read_text())["spec"]["objective"]
    assert katib_defaults(objective) == EXPECTED
    # Every metric is named, so nothing depends on Katib's default.
    assert {s["name"] for s in objective["metricStrategies"]} == set(EXPECTED)


def test_built_experiments_read_losses_by_their_minimum():
    sweeps = load_profile("smoke")["sweeps"]
    for sweep in SWEEPS.values():
        opts = ExperimentOptions.from_profile(copy.deepcopy(sweeps), data_uri="d", output_root="o")
        assert katib_defaults(build_experiment(sweep, opts)["spec"]["objective"]) == EXPECTED
