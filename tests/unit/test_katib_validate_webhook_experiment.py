"""katib.validate.webhook.experiment: the name, counts, objective, algorithm, early stopping and resume policy.

Rules from Katib v0.19.0 pkg/webhook/v1beta1/experiment/validator/validator.go (ValidateExperiment,
validateObjective, validateAlgorithm, validateEarlyStopping, validateResumePolicy).
"""

from __future__ import annotations

import pytest

from katib.validate import validate_experiment
from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    both,
    break_ids,
    del_,
    fixture,
    set_,
)

BREAKS = [
    # header
    Break("api_version", "random.yaml", set_("apiVersion", "kubeflow.org/v1alpha3"), "apiVersion", ("v1alpha3",)),
    Break("kind", "random.yaml", set_("kind", "Trial"), "kind", ("'Trial'",)),
    Break("name_missing", "random.yaml", del_("metadata.name"), "metadata.name"),
    Break("name_not_dns_label", "random.yaml", set_("metadata.name", "Seed_CNN"), "metadata.name", ("Seed_CNN",)),
    # Katib v0.19.0 validator.go: "may not be longer than 40 characters"
    Break("name_longer_than_40", "random.yaml", set_("metadata.name", "a" * 41), "metadata.name",
          ("41 characters", "at most 40")),
    # objective
    Break("objective_missing", "random.yaml", del_("spec.objective"), "spec.objective"),
    Break("objective_type", "random.yaml", set_("spec.objective.type", "maximise"), "spec.objective.type",
          ("maximise", "maximize or minimize")),
    Break("objective_metric_empty", "random.yaml", set_("spec.objective.objectiveMetricName", ""),
          "spec.objective.objectiveMetricName"),
    Break("additional_metrics_contain_objective", "random.yaml",
          set_("spec.objective.additionalMetricNames", ["accuracy", "val_accuracy"]),
          "spec.objective.additionalMetricNames", ("val_accuracy",)),
    Break("goal_not_number", "random.yaml", set_("spec.objective.goal", "0.95"), "spec.objective.goal", ("'0.95'",)),
    Break("metric_strategy", "random.yaml",
          set_("spec.objective.metricStrategies", [{"name": "val_accuracy", "value": "best"}]),
          "spec.objective.metricStrategies", ("best",)),
    # algorithm and early stopping names (their settings: the services' tests)
    Break("algorithm_missing", "random.yaml", del_("spec.algorithm"), "spec.algorithm"),
    Break("algorithm_unknown", "random.yaml", set_("spec.algorithm.algorithmName", "bayes"),
          "spec.algorithm.algorithmName", ("'bayes'", "bayesianoptimization")),
    Break("early_stopping_unknown", "median-stop.yaml", set_("spec.earlyStopping.algorithmName", "median"),
          "spec.earlyStopping.algorithmName", ("'median'", "medianstop")),
    # resume policy
    Break("resume_policy", "random.yaml", set_("spec.resumePolicy", "Always"), "spec.resumePolicy",
          ("'Always'", "LongRunning")),
    # trial counts
    Break("max_trial_count_zero", "random.yaml", set_("spec.maxTrialCount", 0), "spec.maxTrialCount"),
    Break("max_trial_count_string", "random.yaml", set_("spec.maxTrialCount", "8"), "spec.maxTrialCount", ("'8'",)),
    Break("parallel_negative", "random.yaml", set_("spec.parallelTrialCount", -1), "spec.parallelTrialCount", ("-1",)),
    Break("max_failed_negative", "random.yaml", set_("spec.maxFailedTrialCount", -1), "spec.maxFailedTrialCount"),
    Break("parallel_above_max", "random.yaml", set_("spec.parallelTrialCount", 9), "spec.parallelTrialCount",
          ("9", "maxTrialCount 8")),
    Break("default_parallel_above_max", "random.yaml",
          both(del_("spec.parallelTrialCount"), set_("spec.maxTrialCount", 2)), "spec.parallelTrialCount", ("3",)),
    Break("max_failed_above_max", "random.yaml", set_("spec.maxFailedTrialCount", 9), "spec.maxFailedTrialCount"),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def test_max_failed_trial_count_zero_is_allowed() -> None:
    experiment = fixture("random.yaml")
    assert experiment["spec"]["maxFailedTrialCount"] == 0
    assert validate_experiment(experiment) == []


def test_a_name_of_exactly_40_characters_is_accepted() -> None:
    experiment = fixture("random.yaml")
    experiment["metadata"]["name"] = "a" * 40
    assert validate_experiment(experiment) == []
