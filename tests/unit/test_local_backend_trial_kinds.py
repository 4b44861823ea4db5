"""Trial kinds other than a batch Job: the primary container's command runs locally, or one line says why not.

Shapes from Katib v0.19.0's examples (written here, not copied):
kubeflow-training-operator/tfjob-mnist-with-summaries.yaml and pytorchjob-mnist.yaml (containers in
replica pod templates), kubeflow-trainer/trainjob-pytorch.yaml (spec.trainer.command, primary container
"node"), argo/argo-workflow.yaml (primaryPodLabels on a template's pod, container "main") and
tekton/pipeline-run.yaml (primary container "step-<step name>").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from components.core.errors import UserError
from tests.fixtures.trials.example_experiments import EXAMPLE_TRIAL, example_experiment, run

COMMAND = [sys.executable, str(EXAMPLE_TRIAL), "--lr=${trialParameters.lr}", "--momentum=${trialParameters.momentum}"]


def with_trial(trial_spec: dict, primary: str, **template: object) -> dict:
    experiment = example_experiment(maxTrialCount=1)
    experiment["spec"]["trialTemplate"].update(trialSpec=trial_spec, primaryContainerName=primary, **template)
    return experiment


def replica(name: str, command: list[str]) -> dict:
    return {"replicas": 2, "template": {"spec": {"containers": [{"name": name, "image": "x", "command": command}]}}}


@pytest.mark.parametrize(("kind", "replicas", "primary"), [("TFJob", "tfReplicaSpecs", "tensorflow"),
                                                           ("PyTorchJob", "pytorchReplicaSpecs", "pytorch")])
def test_training_operator_jobs_run_their_primary_container_once(tmp_path: Path, kind, replicas, primary) -> None:
    spec = {"apiVersion": "kubeflow.org/v1", "kind": kind,
            "spec": {replicas: {"Worker": replica(primary, COMMAND), "Chief": replica("sidecar", ["false"])}}}
    trial = run(with_trial(spec, primary), tmp_path).trials[0]
    assert trial.state == "Succeeded"


def test_a_train_job_runs_its_trainer_command(tmp_path: Path) -> None:
    spec = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
            "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2, "command": COMMAND}}}
    assert run(with_trial(spec, "node"), tmp_path).trials[0].state == "Succeeded"


def argo_workflow(training_command: list[str]) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {"entrypoint": "hp", "templates": [
        {"name": "hp", "steps": [[{"name": "prepare", "template": "prepare"}],
                                 [{"name": "train", "template": "train"}]]},
        {"name": "prepare", "script": {"image": "python", "command": ["python"], "source": "print(3)"}},
        {"name": "train", "metadata": {"labels": {"katib.kubeflow.org/model-training": "true"}},
         "container": {"name": "model-training", "image": "x", "command": training_command}},
    ]}}


def test_an_argo_workflow_runs_its_labelled_training_step(tmp_path: Path) -> None:
    experiment = with_trial(argo_workflow(COMMAND), "main",
                            primaryPodLabels={"katib.kubeflow.org/model-training": "true"},
                            successCondition='status.[@this].#(phase=="Succeeded")#',
                            failureCondition='status.[@this].#(phase=="Failed")#')
    assert run(experiment, tmp_path).trials[0].state == "Succeeded"


def test_a_step_fed_by_the_workflow_is_refused_in_one_line(tmp_path: Path) -> None:
    experiment = with_trial(argo_workflow([*COMMAND, "--epochs={{inputs.parameters.epochs}}"]), "main",
                            primaryPodLabels={"katib.kubeflow.org/model-training": "true"})
    with pytest.raises(UserError) as raised:
        run(experiment, tmp_path)
    message = str(raised.value)
    assert "\n" not in message and raised.value.exit_code == 2
    assert "{{inputs.parameters.epochs}} from the workflow, which only Argo fills" in message
    assert "Job, TFJob, PyTorchJob" in message and "PipelineRun (Tekton)" in message


def tekton_run(step_command: list[str]) -> dict:
    return {"apiVersion": "tekton.dev/v1beta1", "kind": "PipelineRun", "spec": {"pipelineSpec": {"tasks": [
        {"name": "model-training", "taskSpec": {"steps": [{"name": "model-training", "image": "x",
                                                           "command": step_command}]}}]}}}


def test_a_tekton_pipeline_run_runs_its_step(tmp_path: Path) -> None:
    assert run(with_trial(tekton_run(COMMAND), "step-model-training"), tmp_path).trials[0].state == "Succeeded"
    with pytest.raises(UserError, match=r"takes \$\(params.epochs\) from the workflow, which only Tekton fills"):
        run(with_trial(tekton_run([*COMMAND, "--epochs=$(params.epochs)"]), "step-model-training"), tmp_path / "b")


def test_a_kind_with_no_container_is_refused_naming_the_kinds_that_run(tmp_path: Path) -> None:
    spec = {"apiVersion": "example.com/v1", "kind": "Notebook", "spec": {"image": "x"}}
    with pytest.raises(UserError) as raised:
        run(with_trial(spec, "main"), tmp_path)
    message = str(raised.value)
    assert "\n" not in message and "kind Notebook" in message and "TrainJob, Workflow (Argo)" in message
