"""configMap trial templates: read from a local file (`study sweep run EXP --trial-template FILE`).

Facts from Katib v0.19.0: examples/v1beta1/trial-template/trial-configmap-source.yaml (configMapName,
configMapNamespace, templatePath; the conditions set by hand), pkg/controller.v1beta1/experiment/
manifest/generator.go (GetTrialTemplate: data[templatePath] of that ConfigMap is the trial's YAML)
and experiment_defaults.go (setDefaultTrialTemplate fills conditions only for an inline trialSpec).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from components.core.errors import UserError
from katib.validate import check_experiment, inline_trial_template, unchecked_parts, validate_experiment
from pipelines.cli import main
from tests.fixtures.trials.example_experiments import example_experiment, run

CONDITIONS = {"successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
              "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#'}


def config_map_experiment() -> tuple[dict, dict]:
    """An Experiment whose template is in ConfigMap kubeflow/trial-templates, and that template."""
    experiment = example_experiment(["--logger=stdout"])
    template = experiment["spec"]["trialTemplate"]
    trial_spec = template.pop("trialSpec")
    template["configMap"] = {"configMapName": "trial-templates", "configMapNamespace": "kubeflow",
                             "templatePath": "defaultTrialTemplate.yaml"}
    template.update(CONDITIONS)
    return experiment, trial_spec


def config_map_manifest(trial_spec: dict, name: str = "trial-templates") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "kubeflow"},
            "data": {"defaultTrialTemplate.yaml": yaml.safe_dump(trial_spec)}}


def write(path: Path, document: dict) -> str:
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_a_config_map_manifest_fills_the_template_and_the_sweep_runs(tmp_path: Path) -> None:
    experiment, trial_spec = config_map_experiment()
    assert unchecked_parts(experiment)  # without the file: "not checked"
    inlined = inline_trial_template(experiment, write(tmp_path / "cm.yaml", config_map_manifest(trial_spec)))

    assert unchecked_parts(inlined) == [] and validate_experiment(inlined) == []
    assert [t.state for t in run(inlined, tmp_path / "run").trials] == ["Succeeded"] * 3


def test_the_trial_resource_itself_can_be_given(tmp_path: Path) -> None:
    experiment, trial_spec = config_map_experiment()
    inlined = inline_trial_template(experiment, write(tmp_path / "job.yaml", trial_spec))
    assert inlined["spec"]["trialTemplate"]["trialSpec"] == trial_spec
    assert "configMap" not in inlined["spec"]["trialTemplate"]


def test_the_given_template_is_checked_as_katib_would(tmp_path: Path) -> None:
    experiment, trial_spec = config_map_experiment()
    broken = copy.deepcopy(trial_spec)
    broken["spec"]["template"]["spec"]["containers"][0]["name"] = "trainer"
    inlined = inline_trial_template(experiment, write(tmp_path / "job.yaml", broken))
    with pytest.raises(UserError, match="primaryContainerName: 'training-container' is not a container"):
        check_experiment(inlined)


def test_a_config_map_template_still_needs_its_conditions(tmp_path: Path) -> None:
    experiment, trial_spec = config_map_experiment()
    del experiment["spec"]["trialTemplate"]["successCondition"]
    with pytest.raises(UserError, match="successCondition missing for a configMap trial template"):
        inline_trial_template(experiment, write(tmp_path / "job.yaml", trial_spec))


def test_another_config_map_is_refused(tmp_path: Path) -> None:
    experiment, trial_spec = config_map_experiment()
    with pytest.raises(UserError, match="ConfigMap kubeflow/other is not the Experiment's kubeflow/trial-templates"):
        inline_trial_template(experiment, write(tmp_path / "cm.yaml", config_map_manifest(trial_spec, "other")))


def test_study_sweep_run_takes_trial_template(tmp_path: Path, capsys) -> None:
    experiment, trial_spec = config_map_experiment()
    experiment_file = write(tmp_path / "exp.yaml", experiment)
    manifest = write(tmp_path / "cm.yaml", config_map_manifest(trial_spec))

    assert main(["sweep", "run", experiment_file, "--trial-template", manifest, "--run-dir",
                 str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "optimal_trial.json").is_file()

    # Without the file: one line, exit 2, naming the flag.
    assert main(["sweep", "run", experiment_file, "--run-dir", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trial-template FILE" in err[0]
