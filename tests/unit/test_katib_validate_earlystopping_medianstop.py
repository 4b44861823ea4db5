"""katib.validate.earlystopping.medianstop: median stop's settings.

Rules from Katib v0.19.0 pkg/earlystopping/v1beta1/medianstop/service.py (validate_medianstop_setting).
"""

from __future__ import annotations

import pytest

from tests.fixtures.katib_validate import (
    Break,
    append,
    assert_only_problems_about,
    break_ids,
    set_,
)

BREAKS = [
    Break("min_trials_required_zero", "median-stop.yaml", set_("spec.earlyStopping.algorithmSettings.0.value", "0"),
          "min_trials_required", ("'0'",)),
    Break("start_step_not_int", "median-stop.yaml", set_("spec.earlyStopping.algorithmSettings.1.value", "two"),
          "start_step", ("'two'",)),
    Break("early_stopping_setting_unknown", "median-stop.yaml",
          append("spec.earlyStopping.algorithmSettings", {"name": "patience", "value": "2"}), "patience"),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)
