"""katib.validate.algorithm_settings: settings lists hold strings, as Katib's Go types decode them.
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
    Break("algorithm_setting_not_string", "random.yaml", set_("spec.algorithm.algorithmSettings.0.value", 7),
          "random_state", ("not a string",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
