"""The command line a trial runs locally, built from the Experiment's trialTemplate.

Katib fills the trial template by plain text substitution: every
``${trialParameters.<name>}`` becomes the value of the spec.parameters entry
that trial parameter references, or the trial's metadata when the reference
is ``${trialSpec.Name}`` (Namespace, Kind, APIVersion, Labels[k],
Annotations[k]). The filled Job runs its primary container; here that
container's command + args run as a subprocess and the image is ignored (which
container, per trial kind: :mod:`katib.backends.local.trial_kinds`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.core.errors import UserError
from katib.backends.local.trial_kinds import primary_container, primary_container_of

__all__ = ["TrialCommand", "build_trial_command", "container_argv", "container_env", "primary_container",
           "substitute", "trial_parameter_values"]

_TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.(.+?)\}")
_TRIAL_METADATA = re.compile(r"\$\{trialSpec\.(.+?)\}")
_INDEXED_KEY = re.compile(r"(.+)\[(.+)\]")
# The image's interpreter is this interpreter locally: "python" on PATH may be another one.
_PYTHON = re.compile(r"python(3(\.\d+)?)?")


@dataclass(frozen=True)
class TrialCommand:
    argv: list[str]
    env: dict[str, str]


def build_trial_command(
    trial_template: dict[str, Any],
    trial_name: str,
    namespace: str,
    assignments: list[dict[str, str]],
    extra_env: Mapping[str, str] | None = None,
    path_map: Callable[[str], str] | None = None,
) -> TrialCommand:
    """The filled-in primary container of one trial, as argv and environment.

    ``path_map`` moves container paths in the command, args and the container's
    ``env`` to local ones (the metrics collector's volume, see
    :class:`katib.backends.local.mounts.TrialMount`).
    """
    trial_spec = trial_template.get("trialSpec")
    if not isinstance(trial_spec, dict):
        raise UserError(
            "spec.trialTemplate needs an inline trialSpec; for a configMap template, give its ConfigMap manifest"
            " or the trial's resource YAML with --trial-template FILE"
        )
    values = trial_parameter_values(trial_template, trial_name, namespace, assignments)
    filled = substitute(trial_spec, values, _metadata_values(trial_spec, trial_name, namespace))
    container = primary_container_of(filled, trial_template)
    argv = container_argv(container)
    if path_map is None:
        return TrialCommand(argv=argv, env=container_env(container, extra_env))
    own_env = {**container, "env": [{**e, "value": path_map(str(e["value"]))} if "value" in e else e
                                    for e in container.get("env") or ()]}
    return TrialCommand(argv=[path_map(part) for part in argv], env=container_env(own_env, extra_env))


def trial_parameter_values(
    trial_template: dict[str, Any], trial_name: str, namespace: str, assignments: list[dict[str, str]]
) -> dict[str, str]:
    """Trial parameter name -> the text that replaces ``${trialParameters.<name>}``."""
    assigned = {a["name"]: a["value"] for a in assignments}
    metadata = _metadata_values(trial_template.get("trialSpec") or {}, trial_name, namespace)
    values = {}
    for parameter in trial_template.get("trialParameters") or ():
        name, reference = parameter["name"], str(parameter.get("reference", ""))
        meta = _TRIAL_METADATA.fullmatch(reference)
        if meta:
            values[name] = _metadata_value(meta.group(1), metadata, reference)
        elif reference in assigned:
            values[name] = assigned[reference]
        else:
            raise UserError(
                f"trial parameter {name!r} references {reference!r}, which is neither a parameter in"
                f" spec.parameters ({', '.join(assigned)}) nor ${{trialSpec.<field>}}"
            )
    return values


def substitute(node: Any, values: Mapping[str, str], metadata: Mapping[str, Any]) -> Any:
    """A copy of ``node`` with every placeholder in every string filled in."""
    if isinstance(node, str):
        text = _TRIAL_PARAMETER.sub(lambda m: values.get(m.group(1), m.group(0)), node)
        # Katib fills metadata only through trialParameters; a bare ${trialSpec.Name} left in
        # the template is filled too, so a local run never passes the literal text on.
        return _TRIAL_METADATA.sub(lambda m: _metadata_or_text(m, metadata), text)
    if isinstance(node, list):
        return [substitute(item, values, metadata) for item in node]
    if isinstance(node, dict):
        return {key: substitute(value, values, metadata) for key, value in node.items()}
    return node


def container_argv(container: dict[str, Any]) -> list[str]:
    argv = [str(part) for part in (container.get("command") or [])] + [
        str(part) for part in (container.get("args") or [])
    ]
    if not container.get("command"):
        raise UserError(
            f"container {container.get('name')!r} has no command; locally there is no image entrypoint,"
            " so the trial's container needs an explicit command"
        )
    unfilled = sorted({m.group(1) for part in argv for m in _TRIAL_PARAMETER.finditer(part)})
    if unfilled:
        raise UserError(
            f"the trial command uses ${{trialParameters.X}} for {', '.join(unfilled)},"
            " which spec.trialTemplate.trialParameters does not define"
        )
    if _PYTHON.fullmatch(argv[0]):
        argv[0] = sys.executable
    return argv


def container_env(container: dict[str, Any], extra_env: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment, then the container's ``env`` values, then ``extra_env``."""
    env = dict(os.environ)
    # Metrics are read line by line while the trial runs: Python must not hold them in a buffer.
    env["PYTHONUNBUFFERED"] = "1"
    for entry in container.get("env") or ():
        if "value" in entry:  # valueFrom (secrets, field refs) has no local source
            env[str(entry["name"])] = str(entry["value"])
    env.update({str(k): str(v) for k, v in (extra_env or {}).items()})
    return env


def _metadata_values(trial_spec: dict[str, Any], trial_name: str, namespace: str) -> dict[str, Any]:
    meta = trial_spec.get("metadata") or {}
    return {
        "Name": trial_name,
        "Namespace": namespace,
        "Kind": str(trial_spec.get("kind", "")),
        "APIVersion": str(trial_spec.get("apiVersion", "")),
        "Labels": dict(meta.get("labels") or {}),
        "Annotations": dict(meta.get("annotations") or {}),
    }


def _metadata_value(key: str, metadata: Mapping[str, Any], reference: str) -> str:
    indexed = _INDEXED_KEY.fullmatch(key)
    if indexed and indexed.group(1) in ("Labels", "Annotations"):
        mapping = metadata[indexed.group(1)]
        if indexed.group(2) not in mapping:
            raise UserError(f"{reference}: the trialSpec's metadata has no such {indexed.group(1)[:-1].lower()}")
        return str(mapping[indexed.group(2)])
    if key in metadata and not isinstance(metadata[key], dict):
        return str(metadata[key])
    raise UserError(
        f"{reference} is not trial metadata Katib fills; expected Name, Namespace, Kind, APIVersion,"
        " Labels[key] or Annotations[key]"
    )


def _metadata_or_text(match: re.Match[str], metadata: Mapping[str, Any]) -> str:
    try:
        return _metadata_value(match.group(1), metadata, match.group(0))
    except UserError:
        return match.group(0)
