"""What Katib's defaulting webhook fills in before its validator runs.

pkg/apis/controller/experiments/v1beta1/experiment_defaults.go (SetDefault) at
v0.19.0, with the values of constants.go and common_types.go. The checks read a
field left out through these defaults, so an Experiment is judged as Katib will
hold it.
"""

from __future__ import annotations

from typing import Any

from katib.backends.local.katib_api import (
    DEFAULT_PARALLEL_TRIAL_COUNT,
    FILE_SOURCE_DEFAULTS,
    PROMETHEUS_SOURCE_DEFAULTS,
    STDOUT_COLLECTOR,
    TFEVENT_SOURCE_DEFAULTS,
)

# setDefaultTrialTemplate fills successCondition/failureCondition only for a trialSpec
# of these kinds (a batch Job and constants.go's KubeflowJobKinds); every other kind,
# and every configMap template, must set both.
KINDS_WITH_DEFAULT_CONDITIONS = frozenset({"Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob", "TrainJob"})

# setDefaultMetricsCollector: the collector kind, then each kind's source (stated in katib_api).
DEFAULT_COLLECTOR_KIND = STDOUT_COLLECTOR
__all__ = ["DEFAULT_COLLECTOR_KIND", "FILE_SOURCE_DEFAULTS", "KINDS_WITH_DEFAULT_CONDITIONS",
           "PROMETHEUS_SOURCE_DEFAULTS", "TFEVENT_SOURCE_DEFAULTS", "parallel_trial_count"]


def parallel_trial_count(spec: dict) -> Any:
    """spec.parallelTrialCount as Katib holds it (setDefaultParallelTrialCount)."""
    return spec.get("parallelTrialCount", DEFAULT_PARALLEL_TRIAL_COUNT)
