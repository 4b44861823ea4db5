"""The goptuna suggestion service's checks: cmaes (and sobol, which takes no settings).

pkg/suggestion/v1beta1/goptuna/service.go (ValidateAlgorithmSettings) and
converter.go (toGoptunaSampler) at v0.19.0. Katib's default katib-config serves
cmaes from goptuna; the optuna service can serve it too and checks more
strictly, so the settings are held to both: goptuna's restart strategies plus
optuna's spelling "None", sigma >= 0, and no unknown names.
"""

from __future__ import annotations

from katib.backends.local.katib_api import DOUBLE, INT
from katib.validate.algorithm_settings import RANDOM_STATE, SettingCheck, float_check, one_of
from katib.validate.values import Problems, parameter_list

CMAES: dict[str, SettingCheck] = {
    "random_state": RANDOM_STATE,
    "sigma": float_check(lambda s: s >= 0, "a number >= 0"),
    "restart_strategy": one_of("ipop", "bipop", "none", "None"),
}


def check_cmaes_dimensions(spec: dict) -> Problems:
    """CMA-ES needs two or more double/int parameters (goptuna and optuna both refuse fewer)."""
    continuous = [
        p for p in parameter_list(spec) if isinstance(p, dict) and p.get("parameterType") in (DOUBLE, INT)
    ]
    if len(continuous) < 2:
        return [
            f"spec.parameters: cmaes has {len(continuous)} double/int parameter(s); "
            "expected at least 2 (CMA-ES needs a search space of two or more dimensions)"
        ]
    return []
