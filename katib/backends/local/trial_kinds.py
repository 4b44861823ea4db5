"""The primary container of a trial, for each kind of trial resource Katib runs.

Katib collects metrics from the container named ``primaryContainerName`` in the
pods labelled ``primaryPodLabels`` (examples/v1beta1 at v0.19.0). Locally that
container's command runs once, as one process:

- Job, TFJob, PyTorchJob, XGBoostJob, MPIJob: a ``containers`` list in a pod
  template (all replicas of a distributed job become this one process);
- TrainJob (Kubeflow Trainer): ``spec.trainer``'s command; the runtime names
  its container ``node``, as kubeflow-trainer/trainjob-pytorch.yaml expects;
- Argo Workflow: the template whose pod carries ``primaryPodLabels`` (Argo
  names its container ``main``), as argo/argo-workflow.yaml;
- Tekton PipelineRun: the task step whose container is ``step-<name>``, as
  tekton/pipeline-run.yaml.

A workflow step whose command takes values from other steps (Argo's
``{{...}}``, Tekton's ``$(...)``) is refused: only that workflow engine fills them.
"""

from __future__ import annotations

import re
from typing import Any

from components.core.errors import UserError

POD_KINDS = ("Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
RUNNABLE_KINDS = (*POD_KINDS, "TrainJob", "Workflow (Argo)", "PipelineRun (Tekton)")
_WORKFLOW_VALUE = {"Workflow": re.compile(r"\{\{[^}]*\}\}"), "PipelineRun": re.compile(r"\$\([^)]*\)")}


def primary_container_of(trial_spec: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The container whose command the trial runs, found as Katib would find its primary container."""
    kind = str(trial_spec.get("kind", ""))
    primary = template.get("primaryContainerName")
    if kind == "TrainJob":
        return _trainer(trial_spec, primary)
    if kind == "Workflow":
        return _no_workflow_values(kind, _argo_container(trial_spec, template.get("primaryPodLabels") or {}))
    if kind == "PipelineRun":
        return _no_workflow_values(kind, _tekton_step(trial_spec, primary))
    if not any(True for _ in containers_in(trial_spec)):
        raise UserError(
            f"spec.trialTemplate.trialSpec (kind {kind or '?'}) has no container the local backend can find;"
            f" it runs the primary container's command of {', '.join(RUNNABLE_KINDS)} trials, as one local process"
        )
    return primary_container(trial_spec, primary)


def primary_container(trial_spec: dict[str, Any], primary_name: str | None) -> dict[str, Any]:
    """The container Katib collects metrics from, found in any pod template of the trial spec."""
    containers = list(containers_in(trial_spec))
    if not containers:
        raise UserError("spec.trialTemplate.trialSpec has no containers to run")
    if primary_name:
        for container in containers:
            if container.get("name") == primary_name:
                return container
        raise UserError(
            f"spec.trialTemplate.primaryContainerName is {primary_name!r}, but the trialSpec's containers"
            f" are {', '.join(str(c.get('name')) for c in containers)}"
        )
    if len(containers) > 1:
        raise UserError("spec.trialTemplate.primaryContainerName is needed: the trialSpec has several containers")
    return containers[0]


def containers_in(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from containers_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers_in(item)


def _trainer(trial_spec: dict[str, Any], primary: str | None) -> dict[str, Any]:
    trainer = (trial_spec.get("spec") or {}).get("trainer") or {}
    if not trainer.get("command"):
        raise UserError(
            "spec.trialTemplate.trialSpec (TrainJob) has no spec.trainer.command; its runtime's own entrypoint"
            " does not run locally, so the trainer needs an explicit command"
        )
    return {"name": primary or "node", **{k: trainer[k] for k in ("command", "args", "env") if k in trainer}}


def _argo_container(trial_spec: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    templates = [t for t in (trial_spec.get("spec") or {}).get("templates") or () if isinstance(t, dict)]
    runnable = [t for t in templates if isinstance(t.get("container"), dict)]
    chosen = [t for t in runnable
              if labels and all(((t.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())]
    if len(chosen) != 1 and len(runnable) == 1 and not labels:
        chosen = runnable
    if len(chosen) != 1:
        raise UserError(
            f"spec.trialTemplate.trialSpec (Argo Workflow): {len(chosen)} container templates carry"
            f" primaryPodLabels {labels}; expected exactly one, the training step"
        )
    return chosen[0]["container"]


def _tekton_step(trial_spec: dict[str, Any], primary: str | None) -> dict[str, Any]:
    tasks = ((trial_spec.get("spec") or {}).get("pipelineSpec") or {}).get("tasks") or ()
    steps = [s for task in tasks if isinstance(task, dict)
             for s in (task.get("taskSpec") or {}).get("steps") or () if isinstance(s, dict)]
    for step in steps:
        if f"step-{step.get('name')}" == primary:  # Tekton names a step's container step-<name>
            return step
    raise UserError(
        f"spec.trialTemplate.primaryContainerName is {primary!r}, but the PipelineRun's step containers are"
        f" {', '.join('step-' + str(s.get('name')) for s in steps) or 'none'}"
    )


def _no_workflow_values(kind: str, container: dict[str, Any]) -> dict[str, Any]:
    parts = [str(p) for p in (container.get("command") or []) + (container.get("args") or [])]
    used = sorted({m.group(0) for part in parts for m in _WORKFLOW_VALUE[kind].finditer(part)})
    if used:
        engine = "Argo" if kind == "Workflow" else "Tekton"
        raise UserError(
            f"the {kind}'s primary step takes {', '.join(used)} from the workflow, which only {engine} fills;"
            f" the local backend runs a primary container whose command is complete"
            f" ({', '.join(RUNNABLE_KINDS)})"
        )
    return container
