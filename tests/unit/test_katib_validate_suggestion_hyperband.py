"""katib.validate.suggestion.hyperband: the budget setting and the parallelism a bracket needs.

Rules from Katib v0.19.0 pkg/suggestion/v1beta1/hyperband/service.py (ValidateAlgorithmSettings).
"""

from __future__ import annotations

import pytest

from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    break_ids,
    del_,
    set_,
)

BREAKS = [
    Break("hyperband_without_r_l", "hyperband.yaml", del_("spec.algorithm.algorithmSettings.2"), "r_l"),
    Break("hyperband_resource_not_a_parameter", "hyperband.yaml",
          set_("spec.algorithm.algorithmSettings.0.value", "steps"), "resource_name", ("'steps'",)),
    Break("hyperband_parallelism_too_small", "hyperband.yaml", set_("spec.parallelTrialCount", 4),
          "spec.parallelTrialCount", ("at least 9",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
