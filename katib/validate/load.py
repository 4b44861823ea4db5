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
