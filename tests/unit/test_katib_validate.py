"""katib.validate: Katib's admission rules, checked locally and reported all at once.

The valid fixtures mirror Katib's own examples (see tests/fixtures/katib/valid/README.md);
each rule test breaks exactly one thing in a valid Experiment and expects only
problems about that thing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from components.core.errors import UserError
from components.core.settings import KATIB_DEFAULT_METRICS_FILTER
from katib.validate import (
    ExperimentInvalid,
    check_experiment,
    grid_size,
    load_experiment,
    validate_experiment,
)

VALID_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "katib" / "valid"
VALID_FILES = sorted(VALID_DIR.glob("*.yaml"))


@cache
def _load_cached(name: str) -> dict:
    return load_experiment(str(VALID_DIR / name))


def fixture(name: str) -> dict:
    """A fresh copy of a valid fixture Experiment, safe to break."""
    return copy.deepcopy(_load_cached(name))


def _walk(experiment: dict, dotted: str) -> tuple[Any, str | int]:
    """The container holding the last key of a dotted path ("spec.parameters.0.name")."""
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node: Any = experiment
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def set_(dotted: str, value: Any) -> Callable[[dict], None]:
    def mutate(experiment: dict) -> None:
        node, key = _walk(experiment, dotted)
        node[key] = value
    return mutate


def del_(dotted: str) -> Callable[[dict], None]:
    def mutate(experiment: dict) -> None:
        node, key = _walk(experiment, dotted)
        del node[key]
    return mutate


def append(dotted: str, value: Any) -> Callable[[dict], None]:
    def mutate(experiment: dict) -> None:
        node, key = _walk(experiment, dotted)
        node[key].append(value)
    return mutate


def both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(experiment: dict) -> None:
        for mutation in mutations:
            mutation(experiment)
    return mutate


# ---------------------------------------------------------------- Katib's examples pass


@pytest.mark.parametrize("path", VALID_FILES, ids=[p.name for p in VALID_FILES])
def test_valid_fixture_has_no_problems(path: Path) -> None:
    assert validate_experiment(load_experiment(str(path))) == []


def test_valid_fixtures_cover_katib_features() -> None:
    experiments = [load_experiment(str(p)) for p in VALID_FILES]
    specs = [e["spec"] for e in experiments]
    algorithms = {s["algorithm"]["algorithmName"] for s in specs}
    collectors = {s.get("metricsCollectorSpec", {}).get("collector", {}).get("kind", "StdOut") for s in specs}
    kinds = {s["trialTemplate"].get("trialSpec", {}).get("kind") for s in specs}
    assert {"random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol",
            "bayesianoptimization", "hyperband"} <= algorithms
    assert {"StdOut", "File", "TensorFlowEvent", "Custom", "Push"} <= collectors
    assert {"Job", "PyTorchJob", "TFJob"} <= kinds
    assert any(s.get("earlyStopping", {}).get("algorithmName") == "medianstop" for s in specs)


def test_fixture_readme_names_every_fixture() -> None:
    readme = (VALID_DIR / "README.md").read_text(encoding="utf-8")
    for path in VALID_FILES:
        assert f"`{path.name}`" in readme


# ---------------------------------------------------------------- one rule, one break


@dataclass(frozen=True)
class Break:
    """Break one thing in a valid fixture; every problem must mention `about`."""

    id: str
    fixture: str
    mutate: Callable[[dict], None]
    about: str
    also: tuple[str, ...] = field(default=())  # e.g. the bad value, shown in the message


PROMETHEUS = {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"port": 8080, "path": "/metrics"}}}
JOB_ARGS = "spec.trialTemplate.trialSpec.spec.template.spec.containers.0.args"

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
    # algorithm and its settings
    Break("algorithm_missing", "random.yaml", del_("spec.algorithm"), "spec.algorithm"),
    Break("algorithm_unknown", "random.yaml", set_("spec.algorithm.algorithmName", "bayes"),
          "spec.algorithm.algorithmName", ("'bayes'", "bayesianoptimization")),
    Break("algorithm_setting_unknown", "random.yaml",
          set_("spec.algorithm.algorithmSettings", [{"name": "seed", "value": "1"}]),
          "spec.algorithm.algorithmSettings", ("seed", "random_state")),
    Break("algorithm_setting_not_string", "random.yaml", set_("spec.algorithm.algorithmSettings.0.value", 7),
          "random_state", ("not a string",)),
    Break("algorithm_setting_bad_value", "random.yaml", set_("spec.algorithm.algorithmSettings.0.value", "-1"),
          "random_state", ("'-1'",)),
    Break("bayesopt_acq_func", "bayesian-optimization.yaml",
          append("spec.algorithm.algorithmSettings", {"name": "acq_func", "value": "UCB"}), "acq_func", ("'UCB'",)),
    Break("hyperband_without_r_l", "hyperband.yaml", del_("spec.algorithm.algorithmSettings.2"), "r_l"),
    Break("hyperband_resource_not_a_parameter", "hyperband.yaml",
          set_("spec.algorithm.algorithmSettings.0.value", "steps"), "resource_name", ("'steps'",)),
    Break("hyperband_parallelism_too_small", "hyperband.yaml", set_("spec.parallelTrialCount", 4),
          "spec.parallelTrialCount", ("at least 9",)),
    Break("cmaes_one_dimension", "random.yaml",
          both(set_("spec.algorithm.algorithmName", "cmaes"),
               set_("spec.parameters.1", {"name": "dropout", "parameterType": "categorical",
                                          "feasibleSpace": {"list": ["0.1", "0.5"]}})),
          "cmaes", ("at least 2",)),
    # early stopping, resume policy
    Break("early_stopping_unknown", "median-stop.yaml", set_("spec.earlyStopping.algorithmName", "median"),
          "spec.earlyStopping.algorithmName", ("'median'", "medianstop")),
    Break("min_trials_required_zero", "median-stop.yaml", set_("spec.earlyStopping.algorithmSettings.0.value", "0"),
          "min_trials_required", ("'0'",)),
    Break("start_step_not_int", "median-stop.yaml", set_("spec.earlyStopping.algorithmSettings.1.value", "two"),
          "start_step", ("'two'",)),
    Break("early_stopping_setting_unknown", "median-stop.yaml",
          append("spec.earlyStopping.algorithmSettings", {"name": "patience", "value": "2"}), "patience"),
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
    # parameters
    Break("parameters_empty", "random.yaml", set_("spec.parameters", []), "spec.parameters"),
    Break("parameters_and_nas_config", "random.yaml", set_("spec.nasConfig", {"graphConfig": {"numLayers": 8}}),
          "nasConfig"),
    Break("parameter_name_duplicate", "random.yaml",
          append("spec.parameters", {"name": "learning_rate", "parameterType": "double",
                                     "feasibleSpace": {"min": "0.1", "max": "0.2"}}),
          "duplicate parameter name", ("learning_rate",)),
    Break("parameter_type_unknown", "random.yaml", set_("spec.parameters.0.parameterType", "float"),
          "parameterType", ("'float'",)),
    Break("feasible_space_missing", "random.yaml", del_("spec.parameters.0.feasibleSpace"), "feasibleSpace"),
    Break("double_with_list", "random.yaml", set_("spec.parameters.0.feasibleSpace.list", ["0.1"]),
          "feasibleSpace.list"),
    Break("min_above_max", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", "0.02"),
          "spec.parameters[0] (learning_rate)", ("min <= max", "'0.02'")),
    Break("min_not_a_number", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", "small"),
          "feasibleSpace.min", ("'small'",)),
    Break("int_bound_not_integer", "tpe.yaml", set_("spec.parameters.1.feasibleSpace.min", "2.5"),
          "spec.parameters[1] (conv_blocks)", ("an integer", "'2.5'")),
    Break("step_not_positive", "random.yaml", set_("spec.parameters.0.feasibleSpace.step", "0"),
          "feasibleSpace.step", ("'0'",)),
    Break("categorical_with_min", "tpe.yaml", set_("spec.parameters.2.feasibleSpace.min", "1"),
          "type categorical", ("min",)),
    Break("categorical_empty_list", "tpe.yaml", set_("spec.parameters.2.feasibleSpace.list", []),
          "non-empty feasibleSpace.list"),
    Break("discrete_not_numeric", "pytorchjob.yaml", set_("spec.parameters.1.feasibleSpace.list", ["0", "all"]),
          "discrete", ('"all"',)),
    Break("distribution_unknown", "random.yaml", set_("spec.parameters.0.feasibleSpace.distribution", "gaussian"),
          "feasibleSpace.distribution", ("'gaussian'", "logUniform")),
    Break("log_distribution_min_zero", "distribution.yaml", set_("spec.parameters.0.feasibleSpace.min", "0"),
          "logUniform", ("min > 0",)),
    Break("bound_is_yaml_number", "random.yaml", set_("spec.parameters.0.feasibleSpace.min", 0.0001),
          "feasibleSpace.min", ("not a string",)),
    Break("list_entries_are_yaml_numbers", "pytorchjob.yaml", set_("spec.parameters.1.feasibleSpace.list", [0, 20]),
          "feasibleSpace.list", ("not strings",)),
    # grid
    Break("grid_double_without_step", "grid.yaml", del_("spec.parameters.0.feasibleSpace.step"),
          "grid needs feasibleSpace.step", ("learning_rate",)),
    Break("grid_more_trials_than_points", "grid.yaml", set_("spec.maxTrialCount", 46), "spec.maxTrialCount",
          ("46", "45 points")),
    # trial template: source
    Break("trial_template_missing", "random.yaml", del_("spec.trialTemplate"), "spec.trialTemplate"),
    Break("trial_spec_and_config_map", "random.yaml",
          set_("spec.trialTemplate.configMap", {"configMapName": "t", "configMapNamespace": "n", "templatePath": "p"}),
          "both trialSpec and configMap"),
    Break("no_trial_source", "random.yaml", del_("spec.trialTemplate.trialSpec"), "neither trialSpec nor configMap"),
    Break("config_map_without_template_path", "trial-configmap-source.yaml",
          del_("spec.trialTemplate.configMap.templatePath"), "templatePath"),
    # trial template: trialParameters
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
    # trial template: containers, conditions, shape
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
    # batch/v1 Job trialSpec must convert to Kubernetes' Job type
    Break("job_field_typo", "random.yaml",
          set_("spec.trialTemplate.trialSpec.spec.template.spec.containers.0.imagee", "x"),
          "containers[0].imagee", ("unknown field",)),
    Break("job_env_value_number", "random.yaml",
          set_("spec.trialTemplate.trialSpec.spec.template.spec.containers.0.env", [{"name": "SEED", "value": 7}]),
          "containers[0].env[0].value", ("a string",)),
    Break("job_int_field_string", "random.yaml", set_("spec.trialTemplate.trialSpec.spec.backoffLimit", "0"),
          "spec.backoffLimit", ("an integer",)),
    # metrics collector
    Break("collector_kind_unknown", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.collector.kind", "Files"), "collector.kind", ("'Files'",)),
    Break("collector_kind_none_renamed", "sobol.yaml", set_("spec.metricsCollectorSpec.collector.kind", "None"),
          "collector.kind", ("Push",)),
    Break("file_path_relative", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.path", "metrics.log"),
          "fileSystemPath.path", ("absolute", "'metrics.log'")),
    Break("file_kind_directory", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.kind", "Directory"),
          "fileSystemPath.kind", ("kind File",)),
    Break("file_format_unknown", "file-metrics-collector-json.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "CSV"), "fileSystemPath.format", ("'CSV'",)),
    Break("file_json_with_filter", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "JSON"), "filter", ("JSON",)),
    Break("tfevent_kind_file", "tfevent-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.kind", "File"), "fileSystemPath.kind",
          ("Directory",)),
    Break("tfevent_with_format", "tfevent-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "TEXT"), "fileSystemPath.format"),
    Break("custom_without_container", "custom-metrics-collector.yaml",
          del_("spec.metricsCollectorSpec.collector.customCollector"), "customCollector"),
    Break("filter_not_a_regex", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.filter.metricsFormat", ["metric=([\\w-+"]),
          "metricsFormat[0]", ("not a valid regular expression",)),
    Break("filter_one_capture_group", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.filter.metricsFormat", ["val_accuracy=([0-9.]+)"]),
          "metricsFormat[0]", ("1 capture group",)),
    Break("prometheus_port_zero", "random.yaml",
          both(set_("spec.metricsCollectorSpec", copy.deepcopy(PROMETHEUS)),
               set_("spec.metricsCollectorSpec.source.httpGet.port", 0)), "httpGet.port"),
    Break("prometheus_path_relative", "random.yaml",
          both(set_("spec.metricsCollectorSpec", copy.deepcopy(PROMETHEUS)),
               set_("spec.metricsCollectorSpec.source.httpGet.path", "metrics")), "httpGet.path", ("'metrics'",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=[b.id for b in BREAKS])
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    experiment = fixture(case.fixture)
    case.mutate(experiment)
    problems = validate_experiment(experiment)
    assert problems, f"{case.id}: expected a problem"
    for problem in problems:
        assert "\n" not in problem
        assert case.about in problem, f"unrelated problem for {case.id}: {problem}"
    for fragment in case.also:
        assert any(fragment in p for p in problems), f"{case.id}: no problem mentions {fragment!r}: {problems}"


def test_problem_names_path_value_and_expectation() -> None:
    experiment = fixture("random.yaml")
    del experiment["spec"]["parameters"][0]["feasibleSpace"]["max"]
    assert validate_experiment(experiment) == [
        "spec.parameters[0] (learning_rate): type double needs feasibleSpace.min and max"
    ]


def test_max_failed_trial_count_zero_is_allowed() -> None:
    experiment = fixture("random.yaml")
    assert experiment["spec"]["maxFailedTrialCount"] == 0
    assert validate_experiment(experiment) == []


def test_job_resource_quantities_may_be_numbers() -> None:
    experiment = fixture("random.yaml")
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": 1, "memory": "2Gi"}, "requests": {"cpu": 0.5}}
    assert validate_experiment(experiment) == []


def test_katib_default_stdout_filter_is_accepted() -> None:
    # Katib's own default filter has four groups (name, value and two inside the value).
    experiment = fixture("random.yaml")
    experiment["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "StdOut"},
        "source": {"filter": {"metricsFormat": [KATIB_DEFAULT_METRICS_FILTER]}},
    }
    assert validate_experiment(experiment) == []


def test_three_breaks_give_three_problems() -> None:
    experiment = fixture("random.yaml")
    experiment["spec"]["objective"]["type"] = "best"
    del experiment["spec"]["parameters"][1]["feasibleSpace"]["min"]
    experiment["spec"]["resumePolicy"] = "Sometimes"
    problems = validate_experiment(experiment)
    assert len(problems) == 3
    assert any("spec.objective.type" in p for p in problems)
    assert any("spec.parameters[1] (dropout)" in p for p in problems)
    assert any("spec.resumePolicy" in p for p in problems)


def test_not_a_mapping() -> None:
    assert validate_experiment(["not", "an", "experiment"]) == ["Experiment: is a list; expected a mapping"]


# ---------------------------------------------------------------- check_experiment


def test_check_experiment_accepts_valid() -> None:
    assert check_experiment(fixture("grid.yaml")) is None


def test_check_experiment_lists_every_problem_on_one_line() -> None:
    experiment = fixture("random.yaml")
    experiment["spec"]["objective"]["type"] = "best"
    experiment["spec"]["resumePolicy"] = "Sometimes"
    with pytest.raises(ExperimentInvalid) as raised:
        check_experiment(experiment)
    message = str(raised.value)
    assert isinstance(raised.value, UserError)
    assert raised.value.exit_code == 2
    assert "\n" not in message
    assert message.startswith("invalid Experiment seed-cnn-random: spec.objective.type: 'best'")
    assert message.count("; ") >= 1 and "spec.resumePolicy: 'Sometimes'" in message


# ---------------------------------------------------------------- grid_size


def _experiment_with(*parameters: dict) -> dict:
    return {"spec": {"parameters": list(parameters)}}


def _categorical(name: str, values: list[str]) -> dict:
    return {"name": name, "parameterType": "categorical", "feasibleSpace": {"list": values}}


def test_grid_size_categorical_of_eight() -> None:
    optimizers = ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam", "ftrl"]
    assert grid_size(_experiment_with(_categorical("optimizer", optimizers))) == 8


def test_grid_size_four_categoricals_of_three() -> None:
    layers = [_categorical(f"activation_{i}", ["relu", "selu", "elu"]) for i in range(4)]
    assert grid_size(_experiment_with(*layers)) == 81


@pytest.mark.parametrize(
    ("space", "points"),
    [
        ({"min": "0.001", "max": "0.005", "step": "0.001"}, 5),
        ({"min": "0", "max": "0.3", "step": "0.1"}, 4),  # float error must not drop the end point
        ({"min": "0.1", "max": "0.25", "step": "0.1"}, 2),  # the end point is not on the grid
        ({"min": 0.5, "max": 1.5, "step": 0.5}, 3),  # YAML numbers count too
    ],
)
def test_grid_size_double_with_step(space: dict, points: int) -> None:
    assert grid_size(_experiment_with({"name": "x", "parameterType": "double", "feasibleSpace": space})) == points


@pytest.mark.parametrize(
    ("space", "points"),
    [
        ({"min": "32", "max": "128", "step": "32"}, 4),
        ({"min": "64", "max": "256", "step": "96"}, 3),
        ({"min": "2", "max": "5"}, 4),  # step defaults to 1
        ({"min": "1", "max": "10", "step": "4"}, 3),  # 1, 5, 9
    ],
)
def test_grid_size_int_with_step(space: dict, points: int) -> None:
    assert grid_size(_experiment_with({"name": "n", "parameterType": "int", "feasibleSpace": space})) == points


def test_grid_size_of_a_fixture() -> None:
    assert grid_size(fixture("grid.yaml")) == 5 * 3 * 3


@pytest.mark.parametrize(
    "experiment",
    [
        _experiment_with({"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}),
        _experiment_with({"name": "x", "parameterType": "int", "feasibleSpace": {"min": "5", "max": "1"}}),
        _experiment_with(_categorical("c", [])),
        _experiment_with(),
        {},
    ],
    ids=["double_without_step", "min_above_max", "empty_list", "no_parameters", "no_spec"],
)
def test_grid_size_not_computable(experiment: dict) -> None:
    assert grid_size(experiment) is None


# ---------------------------------------------------------------- load_experiment


def _load_error(tmp_path: Path, text: str | None, name: str = "experiment.yaml") -> str:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        load_experiment(str(path))
    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_load_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _load_error(tmp_path, None)


def test_load_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "directory" in _load_error(tmp_path, None, name="dir.yaml")


def test_load_yaml_syntax_error(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1beta1\nkind: [Experiment\n")
    assert "not valid YAML" in message and "line" in message


def test_load_not_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in _load_error(tmp_path, "- apiVersion: kubeflow.org/v1beta1\n")


def test_load_empty_file(tmp_path: Path) -> None:
    assert "0 YAML documents" in _load_error(tmp_path, "# nothing here\n")


def test_load_several_documents(tmp_path: Path) -> None:
    one = "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\n"
    assert "2 YAML documents" in _load_error(tmp_path, one + "---\n" + one)


def test_load_wrong_kind(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1beta1\nkind: Trial\n")
    assert "'Trial'" in message and "expected Experiment" in message


def test_load_wrong_api_version(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1alpha3\nkind: Experiment\n")
    assert "'kubeflow.org/v1alpha3'" in message and "expected kubeflow.org/v1beta1" in message


def test_load_returns_the_mapping() -> None:
    experiment = load_experiment(str(VALID_DIR / "random.yaml"))
    assert experiment["metadata"]["name"] == "seed-cnn-random"


def test_a_name_of_exactly_40_characters_is_accepted() -> None:
    experiment = fixture("random.yaml")
    experiment["metadata"]["name"] = "a" * 40
    assert validate_experiment(experiment) == []


def test_a_configmap_template_is_reported_as_not_checked(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    configmap = VALID_DIR / "trial-configmap-source.yaml"
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "katib", "validate", str(configmap),
                             str(VALID_DIR / "random.yaml")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first.startswith(f"{configmap}: not checked: the trial template (ConfigMap ")
    assert first.endswith("(not visible here); the rest is valid")
    assert second == f"{VALID_DIR / 'random.yaml'}: valid"
