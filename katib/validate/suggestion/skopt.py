"""The scikit-optimize suggestion service's settings checks: bayesianoptimization.

pkg/suggestion/v1beta1/skopt/service.py at v0.19.0
(_validate_bayesianoptimization_setting): any other setting name fails the Experiment.
"""

from __future__ import annotations

from katib.validate.algorithm_settings import RANDOM_STATE, SettingCheck, int_at_least, one_of

BAYESIAN_OPTIMIZATION: dict[str, SettingCheck] = {
    "random_state": RANDOM_STATE,
    "n_initial_points": int_at_least(0),
    "base_estimator": one_of("GP", "RF", "ET", "GBRT"),
    "acq_func": one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
    "acq_optimizer": one_of("auto", "sampling", "lbfgs"),
}
