"""Read one Katib Experiment from a YAML file, or say in one line why it cannot be read."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.core.errors import UserError
from katib.backends.local.katib_api import API_VERSION, EXPERIMENT_KIND
from katib.validate.values import one_line, show, type_name


def load_experiment(path: str) -> dict:
    """Read one Katib Experiment from a YAML file, or raise UserError saying why not."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; expected a Katib Experiment YAML file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; expected a Katib Experiment YAML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot be read as UTF-8 text ({one_line(str(err))})") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({_yaml_error_summary(err)})") from None
    if len(documents) != 1:
        raise UserError(f"{path}: holds {len(documents)} YAML documents; expected exactly one Experiment")
    experiment = documents[0]
    if not isinstance(experiment, dict):
        raise UserError(f"{path}: top level is a {type_name(experiment)}; expected a mapping (an Experiment)")
    if experiment.get("kind") != EXPERIMENT_KIND:
        raise UserError(f"{path}: kind is {show(experiment.get('kind'))}; expected {EXPERIMENT_KIND}")
    if experiment.get("apiVersion") != API_VERSION:
        raise UserError(f"{path}: apiVersion is {show(experiment.get('apiVersion'))}; expected {API_VERSION}")
    return experiment


def _yaml_error_summary(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return one_line(where + problem)


def inline_trial_template(experiment: dict, path: str) -> dict:
    """``experiment`` with its configMap trial template read from a local file, as an inline trialSpec.

    Katib reads ``data[templatePath]`` of the ConfigMap ``configMapNamespace/configMapName``
    (pkg/controller.v1beta1/experiment/manifest/generator.go, GetTrialTemplate, v0.19.0): a
    YAML text of the trial's resource. Here ``path`` is either that ConfigMap's manifest (its name,
    namespace when set, and key must match) or the trial resource itself.
    """
    spec = experiment.get("spec") if isinstance(experiment, dict) else None
    template = spec.get("trialTemplate") if isinstance(spec, dict) else None
    config_map = template.get("configMap") if isinstance(template, dict) else None
    if not isinstance(config_map, dict):
        raise UserError(f"--trial-template {path}: the Experiment's trialTemplate has no configMap to fill")
    # Katib's defaulting webhook fills the conditions only for an inline trialSpec (experiment_defaults.go,
    # setDefaultTrialTemplate): with a configMap source they must be set, as the Experiment is judged unfilled.
    missing = [key for key in ("successCondition", "failureCondition") if not template.get(key)]
    if missing:
        raise UserError(
            f"spec.trialTemplate: {' and '.join(missing)} missing for a configMap trial template; expected both"
            " (Katib fills them only for an inline trialSpec)"
        )
    document = _one_yaml_mapping(path)
    if document.get("kind") == "ConfigMap":
        document = _template_in_config_map(document, config_map, path)
    inlined = {key: value for key, value in template.items() if key != "configMap"}
    return {**experiment, "spec": {**spec, "trialTemplate": {**inlined, "trialSpec": document}}}


def _template_in_config_map(manifest: dict, config_map: dict, path: str) -> dict:
    metadata = manifest.get("metadata") or {}
    wanted = (config_map.get("configMapName"), config_map.get("configMapNamespace"))
    if metadata.get("name") != wanted[0] or metadata.get("namespace", wanted[1]) != wanted[1]:
        raise UserError(
            f"{path}: ConfigMap {metadata.get('namespace')}/{metadata.get('name')} is not the Experiment's"
            f" {wanted[1]}/{wanted[0]}"
        )
    key = config_map.get("templatePath")
    text = (manifest.get("data") or {}).get(key)
    if not isinstance(text, str):
        raise UserError(f"{path}: ConfigMap {wanted[0]} has no data key {show(key)} (the templatePath)")
    try:
        trial_spec = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"{path}: data[{key}] is not valid YAML ({_yaml_error_summary(err)})") from None
    if not isinstance(trial_spec, dict):
        raise UserError(f"{path}: data[{key}] is a {type_name(trial_spec)}; expected the trial's resource")
    return trial_spec


def _one_yaml_mapping(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({one_line(str(err))})") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({_yaml_error_summary(err)})") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise UserError(f"{path}: expected one YAML mapping (a ConfigMap or the trial's resource)")
    return documents[0]
