"""katib.backends.local.katib_api: Katib's API facts, stated once, and the grid count every place uses.

The facts come from Katib v0.19.0: pkg/apis/controller/experiments/v1beta1/register.go (the
API version), pkg/apis/controller/common/v1beta1/common_types.go (metric strategies),
pkg/apis/controller/experiments/v1beta1/constants.go (DefaultTrialParallelCount),
experiment_defaults.go (setDefaultObjective) and pkg/suggestion/v1beta1/internal/search_space.py
(convert_to_combinations, the grid).
"""

from __future__ import annotations

import math
import re

import pytest

from katib.backends.local import katib_api
from katib.backends.local.search_space import grid_search_space
from tests.conftest import REPO


def test_katibs_names_and_defaults() -> None:
    assert katib_api.API_VERSION == "kubeflow.org/v1beta1"
    assert katib_api.EXPERIMENT_KIND == "Experiment"
    assert katib_api.METRIC_STRATEGIES == ("min", "max", "latest")
    assert katib_api.DEFAULT_PARALLEL_TRIAL_COUNT == 3


def test_a_metric_left_out_gets_the_objective_types_strategy() -> None:
    assert katib_api.default_metric_strategy("maximize") == "max"
    assert katib_api.default_metric_strategy("minimize") == "min"
    assert katib_api.default_metric_strategy("") == "latest"


def _double(low: str, high: str, step: str) -> dict:
    return {"name": "x", "parameterType": "double", "feasibleSpace": {"min": low, "max": high, "step": step}}


GRIDS = {
    "categorical": [{"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b", "c"]}}],
    "discrete": [{"name": "d", "parameterType": "discrete", "feasibleSpace": {"list": ["16", "32"]}}],
    "int_default_step": [{"name": "n", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "5"}}],
    "int_step": [{"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "10", "step": "4"}}],
    "double_end_point": [_double("0", "0.3", "0.1")],
    "double_past_end": [_double("0.1", "0.25", "0.1")],
    "double_near_end": [_double("1", "10", "0.30000000001")],
    "yaml_numbers": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": 0.5, "max": 1.5, "step": 0.5}}],
    "several": [_double("0.001", "0.005", "0.001"),
                {"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b", "c"]}}],
}


@pytest.mark.parametrize("parameters", GRIDS.values(), ids=GRIDS.keys())
def test_the_count_is_the_number_of_points_the_local_grid_visits(parameters: list[dict]) -> None:
    visited = grid_search_space(tuple(parameters))
    assert katib_api.grid_size(parameters) == math.prod(len(values) for values in visited.values())


def test_a_double_grid_is_counted_in_decimal() -> None:
    assert katib_api.grid_points(_double("0", "0.3", "0.1")) == 4  # float error must not drop the end point
    # Katib's np.arange drops the point just past max: 1 + 30 * 0.30000000001 > 10.
    assert katib_api.grid_points(_double("1", "10", "0.30000000001")) == 30


@pytest.mark.parametrize(
    "parameter",
    [_double("0", "1", ""), _double("0", "1", "0"), _double("a", "1", "0.1"),
     {"name": "x", "parameterType": "float", "feasibleSpace": {"min": "0", "max": "1"}},
     {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "0.5", "max": "1"}}, {"name": "x"}],
    ids=["double_without_step", "step_zero", "bound_not_a_number", "unknown_type", "int_bound_not_whole",
         "no_feasible_space"],
)
def test_no_grid(parameter: dict) -> None:
    assert katib_api.grid_points(parameter) is None
    assert katib_api.grid_size([parameter]) is None


# Facts that had more than one home; katib_api.py is the only one now.
_RESTATED = [
    re.compile(r"""^\s*\w+\s*=\s*["']kubeflow\.org/v1beta1["']"""),
    re.compile(r"""^\s*\w+\s*=\s*\(\s*["']min["'],\s*["']max["'],\s*["']latest["']\s*\)"""),
    re.compile(r"^\s*DEFAULT_PARALLEL_TRIAL_COUNT\s*="),
]


def test_katib_facts_are_stated_once() -> None:
    home = REPO / "katib" / "backends" / "local" / "katib_api.py"
    restated = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in ("components", "katib", "pipelines")
        for path in sorted((REPO / folder).rglob("*.py")) if path != home
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(pattern.match(line) for pattern in _RESTATED)
    ]
    assert restated == []
