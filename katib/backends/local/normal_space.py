"""``normal`` and ``logNormal`` parameters, as Katib's hyperopt service draws them, on an Optuna study.

pkg/suggestion/v1beta1/hyperopt/base_service.py at v0.19.0 (create_hyperopt_domain):

- normal: ``hp.normal(mu, sigma)`` with mu the middle of min..max and sigma a
  sixth of its width (99.7% of draws within min..max; the rest fall outside, as
  in Katib); with a step, ``hp.qnormal`` (rounded to a multiple of step);
- logNormal: the same on log(min)..log(max), ``hp.lognormal`` / ``hp.qlognormal``;
- an int parameter gets ``int(value)`` (``convert``: truncated, not rounded).

Optuna has no normal distribution, so the study samples the draw's quantile
``u`` uniformly (a FloatDistribution) and the value is ``mu + sigma * Φ⁻¹(u)``:
for ``random`` that is exactly a normal draw; ``tpe`` models the quantile, a
monotone map of the value. ``u`` stays within ±8 sigma (a mass of about 1e-15 is left out).
Katib serves these distributions with hyperopt only (tpe, random); its Optuna
service builds no distribution for them, and its grid reads min, max and step only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from optuna.distributions import FloatDistribution

from components.core.errors import UserError
from katib.backends.local.katib_api import INT

NORMAL = "normal"
LOG_NORMAL = "logNormal"
NORMAL_DISTRIBUTIONS = (NORMAL, LOG_NORMAL)
# The algorithms whose Katib service (hyperopt) draws normal and logNormal values.
NORMAL_ALGORITHMS = ("tpe", "random")
_STANDARD = NormalDist()
_Z_LIMIT = 8.0
QUANTILE_LOW, QUANTILE_HIGH = _STANDARD.cdf(-_Z_LIMIT), _STANDARD.cdf(_Z_LIMIT)


@dataclass(frozen=True)
class NormalParameter:
    """One normal or logNormal parameter: Katib's mu and sigma, its step and type."""

    name: str
    mu: float
    sigma: float
    log: bool
    step: Decimal | None
    is_int: bool

    def distribution(self) -> FloatDistribution:
        return FloatDistribution(QUANTILE_LOW, QUANTILE_HIGH)

    def value(self, quantile: float) -> int | float:
        """The parameter's value for the quantile Optuna sampled."""
        z = _STANDARD.inv_cdf(min(max(quantile, QUANTILE_LOW), QUANTILE_HIGH))
        value = self.mu + self.sigma * z
        if self.log:
            value = math.exp(value)
        if self.step is not None:  # hyperopt's q*: round(value / q) * q, kept decimal for its text
            value = float(Decimal(round(value / float(self.step))) * self.step)
        return int(value) if self.is_int else value

    def quantile(self, value: float) -> float:
        """The quantile whose value is ``value`` (to give a recorded trial back to Optuna)."""
        if self.is_int:  # int() truncates towards zero: the middle of the values that truncate to it
            value = value + 0.5 if value >= 0 else value - 0.5
        point = math.log(value) if self.log else value
        z = (point - self.mu) / self.sigma if self.sigma > 0 else 0.0
        return min(max(_STANDARD.cdf(z), QUANTILE_LOW), QUANTILE_HIGH)


def normal_parameter(parameter: dict[str, Any]) -> NormalParameter | None:
    """The parameter's normal draw, or None for a uniform, logUniform or list parameter."""
    space = parameter.get("feasibleSpace") or {}
    distribution = space.get("distribution")
    if distribution not in NORMAL_DISTRIBUTIONS:
        return None
    name = parameter.get("name")
    try:
        low, high = float(space["min"]), float(space["max"])
        step = Decimal(str(space["step"]).strip()) if space.get("step") not in (None, "") else None
    except (KeyError, ValueError, ArithmeticError):
        raise UserError(f"parameter {name!r}: a {distribution} distribution needs numeric min and max") from None
    log = distribution == LOG_NORMAL
    if log:
        if low <= 0:
            raise UserError(f"parameter {name!r}: logNormal needs min above 0 (Katib takes log(min)); it is {low:g}")
        low, high = math.log(low), math.log(high)
    return NormalParameter(str(name), (low + high) / 2, (high - low) / 6, log, step,
                           str(parameter.get("parameterType", "")).lower() == INT)


def check_normal_algorithm(algorithm_name: str, parameters: tuple[dict[str, Any], ...]) -> None:
    """Refuse normal/logNormal for an algorithm whose Katib service does not draw them."""
    if algorithm_name in NORMAL_ALGORITHMS or algorithm_name == "grid":
        return
    for parameter in parameters:
        distribution = (parameter.get("feasibleSpace") or {}).get("distribution")
        if distribution in NORMAL_DISTRIBUTIONS:
            raise UserError(
                f"parameter {parameter.get('name')!r} has distribution {distribution!r}, which Katib draws only"
                f" in its hyperopt service ({', '.join(NORMAL_ALGORITHMS)}); the service behind {algorithm_name!r}"
                " does not draw it"
            )


def grid_parameters(parameters: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The parameters as Katib's grid reads them: min, max and step, never a normal distribution
    (internal/search_space.py, convert_to_combinations)."""
    plain = []
    for parameter in parameters:
        space = parameter.get("feasibleSpace") or {}
        if space.get("distribution") in NORMAL_DISTRIBUTIONS:
            parameter = {**parameter, "feasibleSpace": {k: v for k, v in space.items() if k != "distribution"}}
        plain.append(parameter)
    return tuple(plain)
