"""katib.validate.suggestion.skopt: bayesianoptimization's settings.

Rules from Katib v0.19.0 pkg/suggestion/v1beta1/skopt/service.py.
"""

from __future__ import annotations

import pytest

from tests.fixtures.katib_validate import (
    Break,
    append,
    assert_only_problems_about,
    break_ids,
)

BREAKS = [
    Break("bayesopt_acq_func", "bayesian-optimization.yaml",
          append("spec.algorithm.algorithmSettings", {"name": "acq_func", "value": "UCB"}), "acq_func", ("'UCB'",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
