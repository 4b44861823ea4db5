"""The suggestion services' ValidateAlgorithmSettings: run after admission, it fails the Experiment.

Katib asks the service that katib-config names for the algorithm
(katib.validate.katib_config) to check the algorithm's settings; each service
module here holds that service's checks (pkg/suggestion/v1beta1/<service>/ at
v0.19.0). Where katib-config may name more than one service for an algorithm,
a setting either of them knows is accepted.
"""

from __future__ import annotations

from katib.validate.algorithm_settings import SettingCheck, check_known_settings, read_settings
from katib.validate.katib_config import ALGORITHMS
from katib.validate.suggestion import goptuna, hyperopt, optuna, skopt
from katib.validate.suggestion.hyperband import check_hyperband
from katib.validate.values import Problems

SETTINGS_PATH = "spec.algorithm.algorithmSettings"

# The setting names each algorithm's service accepts (hyperband checks its own, sobol takes none).
SETTING_RULES: dict[str, dict[str, SettingCheck]] = {
    "random": hyperopt.RANDOM,
    "grid": optuna.GRID,
    # tpe is hyperopt's in the default katib-config, optuna's or goptuna's in others.
    "tpe": {**optuna.TPE, **hyperopt.TPE},
    "multivariate-tpe": optuna.MULTIVARIATE_TPE,
    "cmaes": goptuna.CMAES,
    "bayesianoptimization": skopt.BAYESIAN_OPTIMIZATION,
}


def check_algorithm_settings(spec: dict) -> Problems:
    """The suggestion service's ValidateAlgorithmSettings for spec.algorithm."""
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict) or algorithm.get("algorithmName") not in ALGORITHMS:
        return []  # the webhook's check (katib.validate.webhook.experiment) reports it
    name = algorithm["algorithmName"]
    settings, problems = read_settings(SETTINGS_PATH, algorithm.get("algorithmSettings"))
    if name in SETTING_RULES:
        problems += check_known_settings(SETTINGS_PATH, name, settings, SETTING_RULES[name])
    if name == "hyperband":
        problems += check_hyperband(spec, settings)
    if name == "cmaes":
        problems += goptuna.check_cmaes_dimensions(spec)
    return problems
