"""katib.validate.suggestion: each algorithm's settings go to the service that serves it.

Which service serves which algorithm: Katib v0.19.0
manifests/v1beta1/installs/katib-standalone/katib-config.yaml.
"""

from __future__ import annotations

from katib.validate import validate_experiment
from katib.validate.katib_config import ALGORITHMS, SUGGESTION_SERVICES
from katib.validate.suggestion import SETTING_RULES
from tests.fixtures.katib_validate import fixture


def test_setting_rules_are_for_registered_algorithms() -> None:
    assert set(SETTING_RULES) <= ALGORITHMS
    assert SUGGESTION_SERVICES["cmaes"] == "goptuna" and SUGGESTION_SERVICES["grid"] == "optuna"


def test_tpe_takes_the_settings_of_hyperopt_and_of_optuna() -> None:
    experiment = fixture("tpe.yaml")
    experiment["spec"]["algorithm"]["algorithmSettings"] = [
        {"name": "n_EI_candidates", "value": "24"},  # hyperopt's spelling
        {"name": "n_ei_candidates", "value": "24"},  # optuna's and goptuna's
        {"name": "n_startup_trials", "value": "5"},
    ]
    assert validate_experiment(experiment) == []
    experiment["spec"]["algorithm"]["algorithmSettings"] = [{"name": "seed", "value": "1"}]
    assert validate_experiment(experiment) == [
        "spec.algorithm.algorithmSettings (seed): unknown setting for tpe; expected one of random_state, "
        "n_startup_trials, n_ei_candidates, n_EI_candidates, gamma, prior_weight"
    ]
