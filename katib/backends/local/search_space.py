"""Experiment parameters <-> Optuna distributions, and sampled values back to Katib's strings.

Mirrors Katib's Optuna suggestion service (``pkg/suggestion/v1beta1/optuna``):
int and double parameters become Int/FloatDistribution (log scale for
``logUniform``, quantized by ``step`` otherwise), categorical and discrete
parameters become a CategoricalDistribution; ``normal`` and ``logNormal`` are
drawn as Katib's hyperopt service draws them (:mod:`katib.backends.local.normal_space`). The grid follows Katib's
``convert_to_combinations``: ints step through min..max, doubles need a step,
lists are taken as they are.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from components.core.errors import UserError
from katib.backends.local.katib_api import (
    CATEGORICAL,
    DOUBLE,
    INT,
    LOG_UNIFORM,
    PARAMETER_TYPES,
    UNIFORM,
    range_points,
)
from katib.backends.local.normal_space import NORMAL_DISTRIBUTIONS, normal_parameter

# Katib clamps log-scale lower bounds so log() is defined (base_service.py).
MIN_LOG_DOUBLE = 1e-10
MIN_LOG_INT = 1

GridValue = int | float | str


def optuna_search_space(parameters: tuple[dict[str, Any], ...]) -> dict[str, BaseDistribution]:
    """One Optuna distribution per Experiment parameter, in the Experiment's order."""
    return {p["name"]: parameter_distribution(p) for p in parameters}


def parameter_distribution(parameter: dict[str, Any]) -> BaseDistribution:
    kind = parameter_type(parameter)
    normal = normal_parameter(parameter) if kind in (INT, DOUBLE) else None
    if normal is not None:
        return normal.distribution()
    if kind == INT:
        return _int_distribution(parameter)
    if kind == DOUBLE:
        return _double_distribution(parameter)
    if kind == CATEGORICAL:
        return CategoricalDistribution(tuple(_list_strings(parameter)))
    return CategoricalDistribution(tuple(_discrete_numbers(parameter)))


def grid_search_space(parameters: tuple[dict[str, Any], ...]) -> dict[str, list[GridValue]]:
    """Every value a grid search visits, per parameter (Katib's convert_to_combinations)."""
    return {p["name"]: grid_values(p) for p in parameters}


def grid_values(parameter: dict[str, Any]) -> list[GridValue]:
    kind = parameter_type(parameter)
    space = parameter.get("feasibleSpace") or {}
    if kind == INT:
        step = int(_decimal(space.get("step") or 1, parameter, "step"))
        return list(range(_int_bound(parameter, "min"), _int_bound(parameter, "max") + 1, step))
    if kind == DOUBLE:
        if space.get("step") in (None, ""):
            raise UserError(f"parameter {parameter['name']!r}: a grid over a double needs feasibleSpace.step")
        return _double_grid(parameter)
    if kind == CATEGORICAL:
        return list(_list_strings(parameter))
    return list(_discrete_numbers(parameter))


def parameter_assignments(parameters: tuple[dict[str, Any], ...], values: dict[str, Any]) -> list[dict[str, str]]:
    """Optuna's sampled values as Katib's ``parameterAssignments``: [{name, value}] of strings."""
    return [{"name": p["name"], "value": assignment_string(p, values[p["name"]])} for p in parameters]


def assignment_string(parameter: dict[str, Any], value: Any) -> str:
    """The string Katib would put in parameterAssignments for a sampled value."""
    kind = parameter_type(parameter)
    normal = normal_parameter(parameter) if kind in (INT, DOUBLE) else None
    if normal is not None:
        value = normal.value(value)
    if kind == INT:
        return str(int(value))
    if kind == DOUBLE:
        # Python's shortest round-trip form, as Katib's Python services send str(value).
        return str(float(value))
    if kind == CATEGORICAL:
        return str(value)
    # A discrete value goes back as it was written in the Experiment ("32", not "32.0").
    for text, number in zip(_list_strings(parameter), _discrete_numbers(parameter)):
        if number == value:
            return text
    return str(value)


def optuna_values(parameters: tuple[dict[str, Any], ...], assignments: list[dict[str, str]]) -> dict[str, Any]:
    """Katib assignment strings back to the values Optuna samples (to enqueue a trial again)."""
    strings = {a["name"]: a["value"] for a in assignments}
    values: dict[str, Any] = {}
    for p in parameters:
        text = strings[p["name"]]
        kind = parameter_type(p)
        normal = normal_parameter(p) if kind in (INT, DOUBLE) else None
        if normal is not None:
            values[p["name"]] = normal.quantile(float(text))
        elif kind == INT:
            values[p["name"]] = int(text)
        elif kind == DOUBLE:
            values[p["name"]] = float(text)
        elif kind == CATEGORICAL:
            values[p["name"]] = text
        else:
            values[p["name"]] = _number(text, p)
    return values


def parameter_type(parameter: dict[str, Any]) -> str:
    kind = str(parameter.get("parameterType", "")).lower()
    if kind not in PARAMETER_TYPES:
        raise UserError(
            f"parameter {parameter.get('name')!r} has parameterType {parameter.get('parameterType')!r};"
            f" expected one of {', '.join(PARAMETER_TYPES)}"
        )
    return kind


def _int_distribution(parameter: dict[str, Any]) -> IntDistribution:
    low, high = _int_bound(parameter, "min"), _int_bound(parameter, "max")
    if _distribution_name(parameter) == LOG_UNIFORM:
        return IntDistribution(max(MIN_LOG_INT, low), high, log=True)
    step = (parameter.get("feasibleSpace") or {}).get("step")
    return IntDistribution(low, high, step=int(_decimal(step, parameter, "step")) if step else 1)


def _double_distribution(parameter: dict[str, Any]) -> FloatDistribution:
    space = parameter.get("feasibleSpace") or {}
    low = float(_decimal(space.get("min"), parameter, "min"))
    high = float(_decimal(space.get("max"), parameter, "max"))
    if _distribution_name(parameter) == LOG_UNIFORM:
        # Katib drops the step on a log scale: a quantized log range is not defined.
        return FloatDistribution(max(MIN_LOG_DOUBLE, low), high, log=True)
    step = space.get("step")
    return FloatDistribution(low, high, step=float(_decimal(step, parameter, "step")) if step else None)


def _double_grid(parameter: dict[str, Any]) -> list[GridValue]:
    """min, min+step, ... up to max, computed in decimal so 0.1+0.2 is written "0.3"."""
    space = parameter["feasibleSpace"]
    low = _decimal(space.get("min"), parameter, "min")
    high = _decimal(space.get("max"), parameter, "max")
    step = _decimal(space.get("step"), parameter, "step")
    if step <= 0:
        raise UserError(f"parameter {parameter['name']!r}: feasibleSpace.step must be above 0")
    return [float(low + i * step) for i in range(range_points(low, high, step))]


def _distribution_name(parameter: dict[str, Any]) -> str:
    name = (parameter.get("feasibleSpace") or {}).get("distribution") or UNIFORM
    if name not in (UNIFORM, LOG_UNIFORM, *NORMAL_DISTRIBUTIONS):
        raise UserError(
            f"parameter {parameter['name']!r} has distribution {name!r}; expected one of"
            f" {UNIFORM}, {LOG_UNIFORM}, {', '.join(NORMAL_DISTRIBUTIONS)}"
        )
    return name


def _list_strings(parameter: dict[str, Any]) -> list[str]:
    values = (parameter.get("feasibleSpace") or {}).get("list")
    if not values:
        raise UserError(f"parameter {parameter['name']!r} needs a non-empty feasibleSpace.list")
    return [str(v) for v in values]


def _discrete_numbers(parameter: dict[str, Any]) -> list[int | float]:
    return [_number(text, parameter) for text in _list_strings(parameter)]


def _number(text: str, parameter: dict[str, Any]) -> int | float:
    value = _decimal(text, parameter, "list")
    return int(value) if value == value.to_integral_value() and "." not in text else float(value)


def _int_bound(parameter: dict[str, Any], key: str) -> int:
    value = _decimal((parameter.get("feasibleSpace") or {}).get(key), parameter, key)
    if value != value.to_integral_value():
        raise UserError(f"parameter {parameter['name']!r}: feasibleSpace.{key} {value} is not a whole number")
    return int(value)


def _decimal(value: Any, parameter: dict[str, Any], key: str) -> Decimal:
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise UserError(
            f"parameter {parameter.get('name')!r}: feasibleSpace.{key} is {value!r}; expected a number"
        ) from None
