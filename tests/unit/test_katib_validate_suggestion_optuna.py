"""katib.validate.suggestion.optuna: the grid's size and the trials it can hold.

Rules from Katib v0.19.0 pkg/suggestion/v1beta1/optuna/service.py (_validate_grid_setting).
"""

from __future__ import annotations

import pytest

from katib.validate import grid_size
from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    break_ids,
    del_,
    fixture,
    set_,
)

BREAKS = [
    Break("grid_double_without_step", "grid.yaml", del_("spec.parameters.0.feasibleSpace.step"),
          "grid needs feasibleSpace.step", ("learning_rate",)),
    Break("grid_more_trials_than_points", "grid.yaml", set_("spec.maxTrialCount", 46), "spec.maxTrialCount",
          ("46", "45 points")),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def _experiment_with(*parameters: dict) -> dict:
    return {"spec": {"parameters": list(parameters)}}


def _categorical(name: str, values: list[str]) -> dict:
    return {"name": name, "parameterType": "categorical", "feasibleSpace": {"list": values}}


def test_grid_size_categorical_of_eight() -> None:
    optimizers = ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam", "ftrl"]
    assert grid_size(_experiment_with(_categorical("optimizer", optimizers))) == 8


def test_grid_size_four_categoricals_of_three() -> None:
    layers = [_categorical(f"activation_{i}", ["relu", "selu", "elu"]) for i in range(4)]
    assert grid_size(_experiment_with(*layers)) == 81


@pytest.mark.parametrize(
    ("space", "points"),
    [
        ({"min": "0.001", "max": "0.005", "step": "0.001"}, 5),
        ({"min": "0", "max": "0.3", "step": "0.1"}, 4),  # float error must not drop the end point
        ({"min": "0.1", "max": "0.25", "step": "0.1"}, 2),  # the end point is not on the grid
        ({"min": 0.5, "max": 1.5, "step": 0.5}, 3),  # YAML numbers count too
    ],
)
def test_grid_size_double_with_step(space: dict, points: int) -> None:
    assert grid_size(_experiment_with({"name": "x", "parameterType": "double", "feasibleSpace": space})) == points


@pytest.mark.parametrize(
    ("space", "points"),
    [
        ({"min": "32", "max": "128", "step": "32"}, 4),
        ({"min": "64", "max": "256", "step": "96"}, 3),
        ({"min": "2", "max": "5"}, 4),  # step defaults to 1
        ({"min": "1", "max": "10", "step": "4"}, 3),  # 1, 5, 9
    ],
)
def test_grid_size_int_with_step(space: dict, points: int) -> None:
    assert grid_size(_experiment_with({"name": "n", "parameterType": "int", "feasibleSpace": space})) == points


def test_grid_size_of_a_fixture() -> None:
    assert grid_size(fixture("grid.yaml")) == 5 * 3 * 3


@pytest.mark.parametrize(
    "experiment",
    [
        _experiment_with({"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}),
        _experiment_with({"name": "x", "parameterType": "int", "feasibleSpace": {"min": "5", "max": "1"}}),
        _experiment_with(_categorical("c", [])),
        _experiment_with(),
        {},
    ],
    ids=["double_without_step", "min_above_max", "empty_list", "no_parameters", "no_spec"],
)
def test_grid_size_not_computable(experiment: dict) -> None:
    assert grid_size(experiment) is None
