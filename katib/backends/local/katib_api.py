"""Katib's v1beta1 API facts, stated once: names, enumerations, defaults and the grid's size.

Each fact is read from Katib's own sources at v0.19.0 (the file is named beside it),
so the local backend, the validator (``katib.validate``) and the study's
Experiments (``katib.experiments``, ``components.sweeps``) agree on them. Only the
standard library is imported: this module belongs to the local backend, a
general Katib emulator.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

# ---------------------------------------------------------------- names

# pkg/apis/controller/experiments/v1beta1/register.go: Group and Version.
GROUP = "kubeflow.org"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
EXPERIMENT_KIND = "Experiment"

# ---------------------------------------------------------------- enumerations

# pkg/apis/controller/common/v1beta1/common_types.go: ObjectiveType, MetricStrategyType.
MAXIMIZE = "maximize"
MINIMIZE = "minimize"
OBJECTIVE_TYPES = (MAXIMIZE, MINIMIZE)
METRIC_STRATEGIES = ("min", "max", "latest")

# pkg/apis/controller/experiments/v1beta1/experiment_types.go: ParameterType, Distribution,
# ResumePolicyType, in Katib's order.
DOUBLE = "double"
INT = "int"
DISCRETE = "discrete"
CATEGORICAL = "categorical"
PARAMETER_TYPES = (DOUBLE, INT, DISCRETE, CATEGORICAL)
UNIFORM = "uniform"
LOG_UNIFORM = "logUniform"
DISTRIBUTIONS = (UNIFORM, LOG_UNIFORM, "normal", "logNormal")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")

# common_types.go: CollectorKind and FileFormat. "None" was renamed "Push" in Katib 0.17.
STDOUT_COLLECTOR = "StdOut"
FILE_COLLECTOR = "File"
TFEVENT_COLLECTOR = "TensorFlowEvent"
PROMETHEUS_COLLECTOR = "PrometheusMetric"
CUSTOM_COLLECTOR = "Custom"
PUSH_COLLECTOR = "Push"
COLLECTOR_KINDS = (STDOUT_COLLECTOR, FILE_COLLECTOR, TFEVENT_COLLECTOR, PROMETHEUS_COLLECTOR, CUSTOM_COLLECTOR,
                   PUSH_COLLECTOR)
TEXT_FORMAT = "TEXT"
JSON_FORMAT = "JSON"
FILE_FORMATS = (TEXT_FORMAT, JSON_FORMAT)
# common_types.go: FileSystemKind.
FILE_KIND = "File"
DIRECTORY_KIND = "Directory"

# ---------------------------------------------------------------- defaults

# pkg/apis/controller/experiments/v1beta1/constants.go: DefaultTrialParallelCount.
DEFAULT_PARALLEL_TRIAL_COUNT = 3

# experiment_defaults.go, setDefaultMetricsCollector, with common_types.go's DefaultFilePath and
# DefaultTensorflowEventDirPath: the source each collector kind reads when the Experiment names none.
FILE_SOURCE_DEFAULTS = {"kind": FILE_KIND, "path": "/var/log/katib/metrics.log", "format": TEXT_FORMAT}
TFEVENT_SOURCE_DEFAULTS = {"kind": DIRECTORY_KIND, "path": "/var/log/katib/tfevent/"}
PROMETHEUS_SOURCE_DEFAULTS = {"port": 8080, "path": "/metrics"}

# pkg/metricscollector/v1beta1/common/const.go: TimeStampJsonKey, the key of a JSON metrics line
# that holds its time, not a metric.
TIMESTAMP_JSON_KEY = "timestamp"


def default_metric_strategy(objective_type: Any) -> str:
    """The strategy Katib's defaulting webhook gives a metric the Experiment leaves out.

    experiment_defaults.go, setDefaultObjective: the objective type's own ("max" when
    maximizing, "min" when minimizing), else "latest"; additional metrics included.
    """
    return {MAXIMIZE: "max", MINIMIZE: "min"}.get(objective_type, "latest")


# ---------------------------------------------------------------- hyperband

# pkg/suggestion/v1beta1/hyperband/service.py, ValidateAlgorithmSettings and HyperBandParam.convert:
# eta is read as int(float(text)) by the check (float by the service) and falls back to 3 when not positive.
HYPERBAND_DEFAULT_ETA = 3


def hyperband_s_max(r_l: float, eta: float) -> int:
    """The number of brackets less one: int(log(r_l) / log(eta)), in the service's float arithmetic."""
    return int(math.log(r_l) / math.log(eta))


def hyperband_parallel_needed(r_l: float, eta: float) -> int:
    """ValidateAlgorithmSettings: parallelTrialCount must be at least ceil(eta ** s_max), the first bracket's size."""
    return int(math.ceil(eta ** hyperband_s_max(r_l, eta)))


# ---------------------------------------------------------------- the grid


def grid_size(parameters: Any) -> int | None:
    """Points in the grid over an Experiment's ``spec.parameters``; None if one has no grid.

    The product of :func:`grid_points` over the parameters, as Katib's grid service
    counts ``itertools.product`` of ``convert_to_combinations``.
    """
    size = 1
    for parameter in parameters:
        points = grid_points(parameter)
        if points is None:
            return None
        size *= points
    return size


def grid_points(parameter: Any) -> int | None:
    """How many values Katib's grid visits for one parameter; None if it cannot build them.

    pkg/suggestion/v1beta1/internal/search_space.py, convert_to_combinations: a list
    gives its entries; an int steps from min to max by step (default 1); a double
    needs a step and counts min, min+step, ... up to max, in decimal so 0..0.3 by
    0.1 is 4 points. The parameter type is read in any case, as the local backend
    reads it.
    """
    space = parameter.get("feasibleSpace") if isinstance(parameter, dict) else None
    if not isinstance(space, dict):
        return None
    kind = str(parameter.get("parameterType", "")).lower()
    if kind in (CATEGORICAL, DISCRETE):
        entries = space.get("list")
        return len(entries) if isinstance(entries, list) else None
    if kind == INT:
        low, high = _whole(space.get("min")), _whole(space.get("max"))
        step = _decimal(space.get("step") or 1)
        if low is None or high is None or step is None or int(step) == 0:
            return None
        return len(range(low, high + 1, int(step)))
    if kind == DOUBLE:
        low, high, step = (_decimal(space.get(key)) for key in ("min", "max", "step"))
        if low is None or high is None or step is None or step <= 0:
            return None
        return range_points(low, high, step)
    return None


def range_points(low: Decimal, high: Decimal, step: Decimal) -> int:
    """How many of low, low+step, low+2*step, ... are at most high (step > 0)."""
    if low > high:
        return 0
    count = int((high - low) / step) + 1
    # Decimal division rounds to 28 digits; never count a point past high.
    while count > 0 and low + (count - 1) * step > high:
        count -= 1
    return count


def _decimal(value: Any) -> Decimal | None:
    """A finite number from a Katib string ("1e-3") or a YAML number; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _whole(value: Any) -> int | None:
    number = _decimal(value)
    return int(number) if number is not None and number == number.to_integral_value() else None
