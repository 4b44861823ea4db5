"""katib.validate.webhook.trial_job: a batch/v1 Job trialSpec must convert to Kubernetes' Job type.

Rules from Katib v0.19.0 pkg/webhook/v1beta1/experiment/validator/validator.go (validateTrialJob,
validatePatchJob).
"""

from __future__ import annotations

import pytest

from katib.validate import validate_experiment
from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    break_ids,
    fixture,
    set_,
)

BREAKS = [
    Break("job_field_typo", "random.yaml",
          set_("spec.trialTemplate.trialSpec.spec.template.spec.containers.0.imagee", "x"),
          "containers[0].imagee", ("unknown field",)),
    Break("job_env_value_number", "random.yaml",
          set_("spec.trialTemplate.trialSpec.spec.template.spec.containers.0.env", [{"name": "SEED", "value": 7}]),
          "containers[0].env[0].value", ("a string",)),
    Break("job_int_field_string", "random.yaml", set_("spec.trialTemplate.trialSpec.spec.backoffLimit", "0"),
          "spec.backoffLimit", ("an integer",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def test_job_resource_quantities_may_be_numbers() -> None:
    experiment = fixture("random.yaml")
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": 1, "memory": "2Gi"}, "requests": {"cpu": 0.5}}
    assert validate_experiment(experiment) == []
