"""katib.validate.webhook.trial_template: the trial's source, its trialParameters and their uses.

Rules from Katib v0.19.0 pkg/webhook/v1beta1/experiment/validator/validator.go (validateTrialTemplate).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.fixtures.katib_validate import (
    JOB_ARGS,
    VALID_DIR,
    Break,
    append,
    assert_only_problems_about,
    both,
    break_ids,
    del_,
    set_,
)

BREAKS = [
    # source
    Break("trial_template_missing", "random.yaml", del_("spec.trialTemplate"), "spec.trialTemplate"),
    Break("trial_spec_and_config_map", "random.yaml",
          set_("spec.trialTemplate.configMap", {"configMapName": "t", "configMapNamespace": "n", "templatePath": "p"}),
          "both trialSpec and configMap"),
    Break("no_trial_source", "random.yaml", del_("spec.trialTemplate.trialSpec"), "neither trialSpec nor configMap"),
    Break("config_map_without_template_path", "trial-configmap-source.yaml",
          del_("spec.trialTemplate.configMap.templatePath"), "templatePath"),
    # trialParameters
    Break("trial_parameters_missing", "random.yaml", del_("spec.trialTemplate.trialParameters"), "trialParameters"),
    Break("trial_parameter_without_reference", "random.yaml",
          del_("spec.trialTemplate.trialParameters.0.reference"), "trialParameters[0] (learningRate)",
          ("reference",)),
    Break("trial_parameter_name_duplicate", "random.yaml",
          append("spec.trialTemplate.trialParameters", {"name": "learningRate", "reference": "dropout"}),
          "duplicate name", ("'learningRate'",)),
    Break("trial_parameter_reference_duplicate", "random.yaml",
          both(append("spec.trialTemplate.trialParameters", {"name": "rate2", "reference": "learning_rate"}),
               append(JOB_ARGS, "--rate2=${trialParameters.rate2}")),
          "duplicate reference", ("'learning_rate'",)),
    Break("trial_parameter_reference_unknown", "random.yaml",
          set_("spec.trialTemplate.trialParameters.1.reference", "drop_rate"), "reference", ("'drop_rate'",)),
    Break("meta_reference_unknown", "trial-metadata-substitution.yaml",
          set_("spec.trialTemplate.trialParameters.1.reference", "${trialSpec.Uid}"), "reference",
          ("${trialSpec.Uid}",)),
    Break("placeholder_undeclared", "random.yaml", append(JOB_ARGS, "--epochs=${trialParameters.epochs}"),
          "${trialParameters.epochs}", ("does not declare",)),
    Break("trial_parameter_unused", "random.yaml",
          append("spec.trialTemplate.trialParameters", {"name": "unusedName", "reference": "${trialSpec.Name}"}),
          "unusedName", ("never used",)),
    # containers, conditions, shape
    Break("primary_container_missing", "random.yaml", del_("spec.trialTemplate.primaryContainerName"),
          "primaryContainerName"),
    Break("primary_container_not_in_job", "random.yaml", set_("spec.trialTemplate.primaryContainerName", "main"),
          "primaryContainerName", ("'main'", "trial")),
    Break("primary_container_not_in_pytorchjob", "pytorchjob.yaml",
          set_("spec.trialTemplate.primaryContainerName", "master"), "primaryContainerName", ("'master'", "pytorch")),
    Break("conditions_missing_for_other_kind", "random.yaml",
          both(set_("spec.trialTemplate.trialSpec.kind", "Workflow"),
               set_("spec.trialTemplate.trialSpec.apiVersion", "argoproj.io/v1alpha1")),
          "successCondition and failureCondition", ("Workflow",)),
    Break("conditions_missing_for_config_map", "trial-configmap-source.yaml",
          del_("spec.trialTemplate.successCondition"), "successCondition", ("configMap",)),
    Break("trial_spec_named", "random.yaml", set_("spec.trialTemplate.trialSpec.metadata", {"name": "fixed"}),
          "trialSpec.metadata.name", ("'fixed'",)),
    Break("trial_spec_without_api_version", "random.yaml", del_("spec.trialTemplate.trialSpec.apiVersion"),
          "spec.trialTemplate.trialSpec", ("apiVersion",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def test_a_configmap_template_is_reported_as_not_checked() -> None:
    configmap = VALID_DIR / "trial-configmap-source.yaml"
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "katib", "validate", str(configmap),
                             str(VALID_DIR / "random.yaml")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first.startswith(f"{configmap}: not checked: the trial template (ConfigMap ")
    assert first.endswith("(not visible here); the rest is valid")
    assert second == f"{VALID_DIR / 'random.yaml'}: valid"
