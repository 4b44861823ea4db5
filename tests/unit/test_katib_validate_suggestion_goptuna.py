"""katib.validate.suggestion.goptuna: cmaes needs two or more continuous dimensions.

Rules from Katib v0.19.0 pkg/suggestion/v1beta1/goptuna/service.go (ValidateAlgorithmSettings).
"""

from __future__ import annotations

import pytest

from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    both,
    break_ids,
    set_,
)

BREAKS = [
    Break("cmaes_one_dimension", "random.yaml",
          both(set_("spec.algorithm.algorithmName", "cmaes"),
               set_("spec.parameters.1", {"name": "dropout", "parameterType": "categorical",
                                          "feasibleSpace": {"list": ["0.1", "0.5"]}})),
          "cmaes", ("at least 2",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
