"""katib.validate.suggestion.hyperopt: random's and tpe's settings (random.yaml runs random, served by hyperopt).

Rules from Katib v0.19.0 pkg/suggestion/v1beta1/hyperopt/service.py.
"""

from __future__ import annotations

import pytest

from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    break_ids,
    set_,
)

BREAKS = [
    Break("algorithm_setting_unknown", "random.yaml",
          set_("spec.algorithm.algorithmSettings", [{"name": "seed", "value": "1"}]),
          "spec.algorithm.algorithmSettings", ("seed", "random_state")),
    Break("algorithm_setting_bad_value", "random.yaml", set_("spec.algorithm.algorithmSettings.0.value", "-1"),
          "random_state", ("'-1'",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
