"""validateTrialTemplate: the trial's source, its trialParameters and their ${trialParameters.*} uses.

pkg/webhook/v1beta1/experiment/validator/validator.go at v0.19.0 (validateTrialTemplate,
isMetaKey), with the conditions that experiment_defaults.go fills in (see
katib.validate.defaults). A template kept in a ConfigMap is not visible here:
:func:`unchecked_parts` names what Katib would still check in it.
"""

from __future__ import annotations

import re
from typing import Any

from katib.validate.defaults import KINDS_WITH_DEFAULT_CONDITIONS
from katib.validate.values import Problems, parameter_list, show
from katib.validate.webhook.trial_job import check_job_fields

# Kinds whose pods Katib knows come from `containers` lists in the trialSpec.
POD_TEMPLATE_KINDS = frozenset({"Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob"})

# pkg/controller.v1beta1/consts/const.go: trial metadata a trialParameter may reference
# instead of a search parameter, and the placeholder formats.
TRIAL_META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
TRIAL_META_INDEXED_KEYS = ("Labels", "Annotations")
_PLACEHOLDER_RE = re.compile(r"\$\{trialParameters\.(.+?)\}")
_META_REFERENCE_RE = re.compile(r"\$\{trialSpec\.(.+?)\}")
_META_INDEXED_RE = re.compile(r"(.+)\[(.+)\]")


def unchecked_parts(experiment: dict) -> list[str]:
    """What Katib would check that cannot be seen here: a trial template kept in a ConfigMap."""
    template = (experiment.get("spec") or {}).get("trialTemplate") if isinstance(experiment, dict) else None
    config_map = template.get("configMap") if isinstance(template, dict) else None
    if not isinstance(config_map, dict):
        return []
    where = f"{config_map.get('configMapNamespace')}/{config_map.get('configMapName')}"
    return [f"the trial template (ConfigMap {where}, {config_map.get('templatePath')}): its containers, "
            "trial parameters and their ${trialParameters.*} references"]


def check_trial_template(spec: dict) -> Problems:
    template = spec.get("trialTemplate")
    path = "spec.trialTemplate"
    if not isinstance(template, dict):
        return [f"{path}: {show(template)}; expected a mapping with trialSpec or configMap"]
    source_problems = _check_trial_source(template)
    problems = source_problems + _check_trial_parameters(spec, template)
    trial_spec = template.get("trialSpec") if not source_problems and "configMap" not in template else None
    if trial_spec is not None:
        problems += _check_placeholders(template, trial_spec)
        problems += _check_trial_spec_shape(trial_spec)
        problems += check_job_fields(trial_spec)
    problems += _check_primary_container(template, trial_spec)
    if not source_problems:  # which conditions are needed depends on the source
        problems += _check_conditions(template, trial_spec)
    return problems


def _check_trial_source(template: dict) -> Problems:
    path = "spec.trialTemplate"
    has_spec, has_map = "trialSpec" in template, "configMap" in template
    if has_spec and has_map:
        return [f"{path}: has both trialSpec and configMap; expected exactly one"]
    if not has_spec and not has_map:
        return [f"{path}: has neither trialSpec nor configMap; expected exactly one"]
    if has_spec and not isinstance(template["trialSpec"], dict):
        return [f"{path}.trialSpec: {show(template['trialSpec'])}; expected a Kubernetes resource mapping"]
    if has_map:
        config_map = template["configMap"]
        keys = ("configMapName", "configMapNamespace", "templatePath")
        missing = [k for k in keys if not isinstance(config_map, dict) or not config_map.get(k)]
        if missing:
            return [f"{path}.configMap: missing {', '.join(missing)}; expected {', '.join(keys)}"]
    return []


def _check_trial_parameters(spec: dict, template: dict) -> Problems:
    path = "spec.trialTemplate.trialParameters"
    declared = template.get("trialParameters")
    if declared is None:
        return [f"{path}: missing; expected a list of name/reference pairs"]
    if not isinstance(declared, list):
        return [f"{path}: {show(declared)}; expected a list of name/reference pairs"]
    search_names = {p.get("name") for p in parameter_list(spec) if isinstance(p, dict)}
    problems: Problems = []
    names: set[str] = set()
    references: set[str] = set()
    for i, item in enumerate(declared):
        name = item.get("name") if isinstance(item, dict) else None
        reference = item.get("reference") if isinstance(item, dict) else None
        label = f"{path}[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")
        if not isinstance(name, str) or not name or not isinstance(reference, str) or not reference:
            problems.append(f"{label}: name {show(name)}, reference {show(reference)}; expected both non-empty")
            continue
        if "{" in name or "}" in name:
            problems.append(f"{label}: name {show(name)}; expected no '{{' or '}}'")
            continue
        if name in names:
            problems.append(f"{label}: duplicate name {show(name)}; expected unique trialParameter names")
            continue
        if reference in references:
            problems.append(f"{label}: duplicate reference {show(reference)}; expected each reference once")
            continue
        names.add(name)
        references.add(reference)
        # Katib checks references only when there are search parameters (not for NAS).
        if search_names and reference not in search_names and not _is_meta_reference(reference):
            problems.append(
                f"{label}: reference {show(reference)} is not a spec.parameters name; expected one of "
                f"{sorted(n for n in search_names if isinstance(n, str))} or a trial metadata reference "
                "like ${trialSpec.Name}"
            )
    return problems


def _is_meta_reference(reference: str) -> bool:
    """${trialSpec.Name|Namespace|Kind|APIVersion} or ${trialSpec.Labels[k]|Annotations[k]}."""
    match = _META_REFERENCE_RE.fullmatch(reference)
    if not match:
        return False
    key = match.group(1)
    if key in TRIAL_META_KEYS:
        return True
    indexed = _META_INDEXED_RE.fullmatch(key)
    return bool(indexed) and indexed.group(1) in TRIAL_META_INDEXED_KEYS


def _check_placeholders(template: dict, trial_spec: dict) -> Problems:
    """Every ${trialParameters.X} in the trialSpec is declared, and every declared one is used."""
    declared_items = template.get("trialParameters")
    if not isinstance(declared_items, list):
        return []  # already reported by _check_trial_parameters
    declared = [
        item["name"] for item in declared_items
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]
    ]
    used: list[str] = []
    for text in _strings_in(trial_spec):
        used += _PLACEHOLDER_RE.findall(text)
    problems: Problems = []
    for name in dict.fromkeys(used):
        if name not in declared:
            problems.append(
                f"spec.trialTemplate.trialSpec: uses ${{trialParameters.{name}}}, which "
                "spec.trialTemplate.trialParameters does not declare; expected a declared name"
            )
    for name in dict.fromkeys(declared):
        if name not in used:
            problems.append(
                f"spec.trialTemplate.trialParameters ({name}): never used as ${{trialParameters.{name}}} "
                "in spec.trialTemplate.trialSpec; expected each declared parameter to be used"
            )
    return problems


def _check_trial_spec_shape(trial_spec: dict) -> Problems:
    path = "spec.trialTemplate.trialSpec"
    problems: Problems = []
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        problems.append(
            f"{path}: apiVersion {show(trial_spec.get('apiVersion'))}, kind {show(trial_spec.get('kind'))}; "
            "expected both set"
        )
    metadata = trial_spec.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "namespace"):
            if metadata.get(key):
                problems.append(
                    f"{path}.metadata.{key}: {show(metadata[key])}; expected it omitted (Katib names each trial)"
                )
    return problems


def _check_primary_container(template: dict, trial_spec: dict | None) -> Problems:
    path = "spec.trialTemplate.primaryContainerName"
    primary = template.get("primaryContainerName")
    if not isinstance(primary, str) or not primary:
        return [f"{path}: {show(primary)}; expected the name of the container that reports metrics"]
    if trial_spec is None:
        return []  # a configMap template is not visible here
    containers = _container_names(trial_spec)
    if not containers:
        if trial_spec.get("kind") in POD_TEMPLATE_KINDS:
            return [f"spec.trialTemplate.trialSpec: no containers found; expected one named {show(primary)}"]
        return []  # other kinds (Argo, Tekton, TrainJob) keep containers elsewhere
    if primary not in containers:
        return [f"{path}: {show(primary)} is not a container in the trialSpec; expected one of {sorted(containers)}"]
    return []


def _check_conditions(template: dict, trial_spec: dict | None) -> Problems:
    """Katib fills the conditions only for a trialSpec of a known job kind."""
    kind = trial_spec.get("kind") if trial_spec is not None else None
    if kind in KINDS_WITH_DEFAULT_CONDITIONS:
        return []
    missing = [key for key in ("successCondition", "failureCondition") if not template.get(key)]
    if not missing:
        return []
    source = f"trialSpec kind {show(kind)}" if trial_spec is not None else "a configMap trial template"
    return [
        f"spec.trialTemplate: {' and '.join(missing)} missing for {source}; expected both "
        f"(Katib fills them only for {', '.join(sorted(KINDS_WITH_DEFAULT_CONDITIONS))})"
    ]


def _container_names(node: Any) -> set[str]:
    """Names from every `containers` list anywhere in the trialSpec (Job, TFJob replicas, ...)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                names |= {c["name"] for c in value if isinstance(c, dict) and isinstance(c.get("name"), str)}
            else:
                names |= _container_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _container_names(item)
    return names


def _strings_in(node: Any) -> list[str]:
    """Every string key and value, since Katib substitutes into the whole serialized template."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        found: list[str] = []
        for key, value in node.items():
            found += _strings_in(key) + _strings_in(value)
        return found
    if isinstance(node, list):
        return [text for item in node for text in _strings_in(item)]
    return []
