"""katib.validate.defaults: a field left out is judged as Katib's defaulting webhook fills it.

Defaults from Katib v0.19.0 pkg/apis/controller/experiments/v1beta1/experiment_defaults.go
(setDefaultParallelTrialCount, setDefaultMetricsCollector) and constants.go.
"""

from __future__ import annotations

import pytest

from katib.backends.local.katib_api import DEFAULT_PARALLEL_TRIAL_COUNT
from katib.validate import validate_experiment
from katib.validate.defaults import parallel_trial_count
from tests.fixtures.katib_validate import fixture


def test_parallel_trial_count_left_out_is_katibs_default() -> None:
    assert parallel_trial_count({}) == DEFAULT_PARALLEL_TRIAL_COUNT == 3
    assert parallel_trial_count({"parallelTrialCount": 9}) == 9


def test_hyperband_judges_a_left_out_parallel_trial_count_as_the_default() -> None:
    experiment = fixture("hyperband.yaml")
    del experiment["spec"]["parallelTrialCount"]
    assert validate_experiment(experiment) == [
        "spec.parallelTrialCount: 3; hyperband with r_l=9, eta=3 expected at least 9"
    ]


@pytest.mark.parametrize("kind", ["File", "TensorFlowEvent", "PrometheusMetric"])
def test_a_collector_without_a_source_takes_katibs_default_source(kind: str) -> None:
    experiment = fixture("random.yaml")
    experiment["spec"]["metricsCollectorSpec"] = {"collector": {"kind": kind}}
    assert validate_experiment(experiment) == []
