"""The algorithms Katib's default katib-config registers, and the service that serves each.

manifests/v1beta1/installs/katib-standalone/katib-config.yaml at v0.19.0 (its
``suggestions`` and ``earlyStoppings``). The webhook accepts an algorithm only if
katib-config names it; that service then checks the algorithm's settings.
"""

from __future__ import annotations

SUGGESTION_SERVICES = {
    "random": "hyperopt",
    "tpe": "hyperopt",
    "grid": "optuna",
    "hyperband": "hyperband",
    "bayesianoptimization": "skopt",
    "cmaes": "goptuna",
    "sobol": "goptuna",
    "multivariate-tpe": "optuna",
    "enas": "enas",
    "darts": "darts",
    "pbt": "pbt",
}
ALGORITHMS = frozenset(SUGGESTION_SERVICES)

EARLY_STOPPING_SERVICES = {"medianstop": "medianstop"}
EARLY_STOPPING_ALGORITHMS = frozenset(EARLY_STOPPING_SERVICES)
