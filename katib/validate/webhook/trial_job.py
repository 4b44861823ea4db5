"""validateTrialJob: a batch/v1 Job trialSpec must convert to Kubernetes' Job type unchanged.

pkg/webhook/v1beta1/experiment/validator/validator.go at v0.19.0 (validateTrialJob,
validatePatchJob): Katib converts the unstructured trialSpec to batchv1.Job and
rejects it if the round trip loses or changes anything outside resource limits
and requests. Here the kubernetes client's models stand in for the Go types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from katib.validate.values import Problems, is_int, is_number, show


def check_job_fields(trial_spec: dict) -> Problems:
    """Katib converts a batch/v1 Job trialSpec to Kubernetes' Job type and rejects what does not survive.

    Unknown fields (a typo such as `imagee`) and wrong value types (`value: 7` in an
    env var) are caught with the kubernetes client's models; other kinds are CRDs
    that Katib does not check.
    """
    if trial_spec.get("apiVersion") != "batch/v1" or trial_spec.get("kind") != "Job":
        return []
    try:
        from kubernetes import client
    except ImportError:  # the check is a convenience, not a dependency of validation
        return []
    problems: Problems = []
    _check_model_value(client, trial_spec, "V1Job", "spec.trialTemplate.trialSpec", problems)
    return problems


_PRIMITIVE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "datetime": (lambda v: isinstance(v, str), "a timestamp string"),
    "int": (lambda v: is_int(v), "an integer"),
    "float": (lambda v: is_number(v), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}
# Resource quantities are strings in the client's models but Go also reads numbers ("cpu: 1").
_QUANTITY_KEYS = ("limits", "requests", "sizeLimit")


def _check_model_value(client: Any, value: Any, type_name: str, path: str, problems: Problems) -> None:
    if value is None or type_name == "object":
        return  # null is accepted anywhere; `object` is int-or-string or free-form
    if type_name.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{path}: {show(value)}; expected a list")
            return
        for i, item in enumerate(value):
            _check_model_value(client, item, type_name[5:-1], f"{path}[{i}]", problems)
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            problems.append(f"{path}: {show(value)}; expected a mapping")
            return
        item_type = type_name[type_name.index(",") + 1 : -1].strip()
        for key, item in value.items():
            _check_model_value(client, item, item_type, f"{path}.{key}", problems)
        return
    if type_name in _PRIMITIVE_CHECKS:
        accepts, expected = _PRIMITIVE_CHECKS[type_name]
        is_quantity = any(f".{key}" in path for key in _QUANTITY_KEYS) and is_number(value)
        if not accepts(value) and not is_quantity:
            problems.append(f"{path}: {show(value)}; expected {expected}")
        return
    model = getattr(client, type_name, None)
    if model is None:
        return  # a type this client does not describe: nothing to compare against
    if not isinstance(value, dict):
        problems.append(f"{path}: {show(value)}; expected a mapping")
        return
    attribute_for = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in attribute_for:
            problems.append(f"{path}.{key}: unknown field of a batch/v1 Job; Katib rejects fields it cannot convert")
            continue
        _check_model_value(client, item, model.openapi_types[attribute_for[key]], f"{path}.{key}", problems)
