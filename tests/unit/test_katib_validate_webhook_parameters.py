"""katib.validate.webhook.parameters: each search parameter's type, feasible space and distribution.

Rules from Katib v0.19.0 pkg/webhook/v1beta1/experiment/validator/validator.go (validateParameters),
and the JSON decoder's strings.
"""

from __future__ import annotations

import pytest

from katib.validate import validate_experiment
from tests.fixtures.katib_validate import (
    Break,
    append,
    assert_only_problems_about,
    break_ids,
    del_,
    fixture,
    set_,
)

BREAKS = [
    Break("parameters_empty", "random.yaml", set_("spec.parameters", []), "spec.parameters"),
    Break("parameters_and_nas_config", "random.yaml", set_("spec.nasConfig", {"graphConfig": {"numLayers": 8}}),
          "nasConfig"),
    Break("parameter_name_duplicate", "random.yaml",
          append("spec.parameters", {"name": "learning_rate", "parameterType": "double",
                                     "feasibleSpace": {"min": "0.1", "max": "0.2"}}),
          "duplicate parameter name", ("learning_rate",)),
    Break("parameter_type_unknown", "random.yaml", set_("spec.parameters.0.parameterType", "float"),
          "parameterType", ("'float'",)),
    Break("feasible_space_missing", "random.yaml", del_("spec.parameters.0.feasibleSpace"), "feasibleSpace"),
    Break("double_with_list", "random.yaml", set_("spec.parameters.0.feasibleSpace.list", ["0.1"]),
          "feasibleSpace.list"),
    Break("min_above_max", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", "0.02"),
          "spec.parameters[0] (learning_rate)", ("min <= max", "'0.02'")),
    Break("min_not_a_number", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", "small"),
          "feasibleSpace.min", ("'small'",)),
    Break("int_bound_not_integer", "tpe.yaml", set_("spec.parameters.1.feasibleSpace.min", "2.5"),
          "spec.parameters[1] (conv_blocks)", ("an integer", "'2.5'")),
    Break("step_not_positive", "random.yaml", set_("spec.parameters.0.feasibleSpace.step", "0"),
          "feasibleSpace.step", ("'0'",)),
    Break("categorical_with_min", "tpe.yaml", set_("spec.parameters.2.feasibleSpace.min", "1"),
          "type categorical", ("min",)),
    Break("categorical_empty_list", "tpe.yaml", set_("spec.parameters.2.feasibleSpace.list", []),
          "non-empty feasibleSpace.list"),
    Break("discrete_not_numeric", "pytorchjob.yaml", set_("spec.parameters.1.feasibleSpace.list", ["0", "all"]),
          "discrete", ('"all"',)),
    Break("distribution_unknown", "random.yaml", set_("spec.parameters.0.feasibleSpace.distribution", "gaussian"),
          "feasibleSpace.distribution", ("'gaussian'", "logUniform")),
    Break("log_distribution_min_zero", "distribution.yaml", set_("spec.parameters.0.feasibleSpace.min", "0"),
          "logUniform", ("min > 0",)),
    Break("bound_is_yaml_number", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", 0.0001),
          "feasibleSpace.min", ("not a string",)),
    Break("list_entries_are_yaml_numbers", "pytorchjob.yaml", set_("spec.parameters.1.feasibleSpace.list", [0, 20]),
          "feasibleSpace.list", ("not strings",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def test_problem_names_path_value_and_expectation() -> None:
    experiment = fixture("random.yaml")
    del experiment["spec"]["parameters"][0]["feasibleSpace"]["max"]
    assert validate_experiment(experiment) == [
        "spec.parameters[0] (learning_rate): type double needs feasibleSpace.min and max"
    ]
