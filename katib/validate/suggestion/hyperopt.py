"""The hyperopt suggestion service's settings checks: random and tpe.

pkg/suggestion/v1beta1/hyperopt/service.py at v0.19.0 (OptimizerConfiguration
.validate_algorithm_spec): any other setting name fails the Experiment.
"""

from __future__ import annotations

from katib.validate.algorithm_settings import RANDOM_STATE, SettingCheck, float_check, int_at_least

RANDOM: dict[str, SettingCheck] = {"random_state": RANDOM_STATE}
TPE: dict[str, SettingCheck] = {
    "random_state": RANDOM_STATE,
    "n_EI_candidates": int_at_least(1),
    "gamma": float_check(lambda g: 0 < g < 1, "a number between 0 and 1 (exclusive)"),
    "prior_weight": float_check(lambda w: w > 0, "a number > 0"),
}
