"""validateParameters: each search parameter's type, feasible space and distribution.

pkg/webhook/v1beta1/experiment/validator/validator.go at v0.19.0 (validateParameters
and the parameters-or-nasConfig rule of ValidateExperiment), plus what the JSON
decoder in front of it refuses: feasibleSpace values are Go strings. The checks
that go beyond the webhook (unique names, bounds that parse, min <= max, a log
range above 0, discrete values that are numbers) are what the suggestion
services would fail the Experiment on after it was admitted.
"""

from __future__ import annotations

from katib.backends.local.katib_api import DISCRETE, DISTRIBUTIONS, DOUBLE, INT, PARAMETER_TYPES
from katib.validate.values import Problems, show, to_float, to_int


def check_parameters(spec: dict) -> Problems:
    parameters = spec.get("parameters")
    has_nas = spec.get("nasConfig") is not None
    if parameters is not None and not isinstance(parameters, list):
        return [f"spec.parameters: {show(parameters)}; expected a list of parameters"]
    if not parameters:
        if has_nas:
            return []
        return ["spec.parameters: empty; expected at least one parameter (or a spec.nasConfig)"]
    problems: Problems = []
    if has_nas:
        problems.append("spec: has both parameters and nasConfig; expected only one of them")
    seen: set[str] = set()
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            problems.append(f"spec.parameters[{i}]: {show(parameter)}; expected a mapping")
            continue
        name = parameter.get("name")
        path = f"spec.parameters[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")
        if not isinstance(name, str) or not name:
            problems.append(f"{path}: name {show(name)}; expected a non-empty name")
        elif name in seen:
            problems.append(f"{path}: duplicate parameter name {show(name)}; expected unique names")
        else:
            seen.add(name)
        problems += _check_one_parameter(path, parameter)
    return problems


def _check_one_parameter(path: str, parameter: dict) -> Problems:
    kind = parameter.get("parameterType")
    if kind not in PARAMETER_TYPES:
        return [f"{path}: parameterType {show(kind)}; expected one of {', '.join(PARAMETER_TYPES)}"]
    space = parameter.get("feasibleSpace")
    if not isinstance(space, dict) or not space:
        return [f"{path}: feasibleSpace {show(space)}; expected a mapping with the values to search"]
    problems = _check_space_strings(path, space)
    distribution = space.get("distribution")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        problems.append(
            f"{path}: feasibleSpace.distribution {show(distribution)}; expected one of {', '.join(DISTRIBUTIONS)}"
        )
    if kind in (DOUBLE, INT):
        problems += _check_range(path, kind, space)
    else:
        problems += _check_list(path, kind, space)
    return problems


def _check_space_strings(path: str, space: dict) -> Problems:
    """min/max/step and list entries are Go strings: a YAML number fails Katib's decoder."""
    problems: Problems = []
    for key in ("min", "max", "step"):
        value = space.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(
                f"{path}: feasibleSpace.{key} {show(value)} is not a string; Katib reads it as a string, "
                f"quote it (\"{value}\")"
            )
    entries = space.get("list")
    if isinstance(entries, list):
        numbers = [entry for entry in entries if not isinstance(entry, str)]
        if numbers:
            problems.append(
                f"{path}: feasibleSpace.list entries {show(numbers)} are not strings; "
                "Katib reads list entries as strings, quote them"
            )
    return problems


def _check_range(path: str, kind: str, space: dict) -> Problems:
    problems: Problems = []
    if space.get("list"):
        problems.append(f"{path}: type {kind} takes min/max, not feasibleSpace.list {show(space['list'])}")
    if space.get("min") in (None, "") or space.get("max") in (None, ""):
        return problems + [f"{path}: type {kind} needs feasibleSpace.min and max"]
    parse = to_int if kind == INT else to_float
    expected = "an integer" if kind == INT else "a number"
    low, high = parse(space["min"]), parse(space["max"])
    if low is None:
        problems.append(f"{path}: feasibleSpace.min {show(space['min'])}; expected {expected}")
    if high is None:
        problems.append(f"{path}: feasibleSpace.max {show(space['max'])}; expected {expected}")
    if low is not None and high is not None and low > high:
        problems.append(
            f"{path}: feasibleSpace.min {show(space['min'])} > max {show(space['max'])}; expected min <= max"
        )
    step = space.get("step")
    if step not in (None, ""):
        step_value = parse(step)
        if step_value is None or step_value <= 0:
            problems.append(f"{path}: feasibleSpace.step {show(step)}; expected {expected} > 0")
    # Optuna and hyperopt take the log of the bounds of a log-scaled range.
    if space.get("distribution") in ("logUniform", "logNormal") and low is not None and low <= 0:
        problems.append(
            f"{path}: feasibleSpace.min {show(space['min'])} with distribution {space['distribution']}; "
            "expected min > 0 (the range is searched on a log scale)"
        )
    return problems


def _check_list(path: str, kind: str, space: dict) -> Problems:
    problems: Problems = []
    extra = [key for key in ("min", "max", "step") if space.get(key) not in (None, "")]
    if extra:
        problems.append(f"{path}: type {kind} takes feasibleSpace.list only; remove {', '.join(extra)}")
    entries = space.get("list")
    if not isinstance(entries, list) or not entries:
        return problems + [f"{path}: type {kind} needs a non-empty feasibleSpace.list, got {show(entries)}"]
    if kind == DISCRETE:
        # Suggestion services parse discrete values as numbers.
        bad = [entry for entry in entries if to_float(entry) is None]
        if bad:
            problems.append(
                f"{path}: discrete list values {show(bad)} are not numbers; expected numbers (or use categorical)"
            )
    return problems
