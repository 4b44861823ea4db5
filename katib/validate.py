"""Check a Katib v1beta1 Experiment before Katib sees it, and list every problem at once.

Katib rejects a bad Experiment in three places: the admission webhook (after its
defaulting webhook has filled in defaults), the JSON decoder in front of the
webhook (a number where Katib's Go types hold a string), and the Suggestion or
EarlyStopping service's settings validator, which fails the Experiment only
after it was accepted. This module checks all three from the plain dict as
loaded from YAML, so a mistake costs one local run instead of a cluster round
trip. Unlike Katib, which stops at the first failing group, it reports every
problem, each on one line naming the field path, the bad value and what was
expected.

The rules follow Katib's own code (webhook validator, experiment defaults, the
optuna / hyperopt / goptuna / skopt / hyperband / medianstop settings
validators); where this module is stricter than Katib, a comment says why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.core.errors import UserError

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"

# Algorithms registered in Katib's default katib-config (suggestions / earlyStoppings).
HP_ALGORITHMS = frozenset({
    "random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol",
    "bayesianoptimization", "hyperband", "pbt",
})
NAS_ALGORITHMS = frozenset({"enas", "darts"})
ALGORITHMS = HP_ALGORITHMS | NAS_ALGORITHMS
EARLY_STOPPING_ALGORITHMS = frozenset({"medianstop"})

OBJECTIVE_TYPES = ("maximize", "minimize")
METRIC_STRATEGIES = ("min", "max", "latest")
PARAMETER_TYPES = ("double", "int", "discrete", "categorical")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")

# Collector kinds the webhook accepts. "None" was renamed "Push" (Katib 0.17) and is
# now rejected as an unknown kind, so it gets its own hint.
COLLECTOR_KINDS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push")
FILE_FORMATS = ("TEXT", "JSON")

# The defaulting webhook fills successCondition/failureCondition only for these
# trialSpec kinds; every other kind (and every configMap template) must set both.
KINDS_WITH_DEFAULT_CONDITIONS = frozenset(
    {"Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob", "TrainJob"}
)
# Kinds whose pods Katib knows come from `containers` lists in the trialSpec.
POD_TEMPLATE_KINDS = frozenset({"Job", "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob"})

DEFAULT_PARALLEL_TRIAL_COUNT = 3  # Katib's defaulting webhook value.
DEFAULT_HYPERBAND_ETA = 3

# Trial metadata a trialParameter may reference instead of a search parameter.
TRIAL_META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
TRIAL_META_INDEXED_KEYS = ("Labels", "Annotations")

_NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Katib v0.19.0's webhook (pkg/webhook/v1beta1/experiment/validator/validator.go, ValidateExperiment)
# refuses longer names: the name is a prefix of the Suggestion's and trials' object names.
MAX_NAME_LENGTH = 40
_PLACEHOLDER_RE = re.compile(r"\$\{trialParameters\.(.+?)\}")
_META_REFERENCE_RE = re.compile(r"\$\{trialSpec\.(.+?)\}")
_META_INDEXED_RE = re.compile(r"(.+)\[(.+)\]")
_INT_TEXT_RE = re.compile(r"[+-]?\d+")
_FLOAT_TEXT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FLOAT_TOLERANCE = 1e-9

Problems = list[str]


class ExperimentInvalid(UserError):
    """The Experiment would be rejected by Katib; the message lists every reason."""


# ---------------------------------------------------------------- public API


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
        raise UserError(f"{path}: cannot be read as UTF-8 text ({_one_line(str(err))})") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({_yaml_error_summary(err)})") from None
    if len(documents) != 1:
        raise UserError(f"{path}: holds {len(documents)} YAML documents; expected exactly one Experiment")
    experiment = documents[0]
    if not isinstance(experiment, dict):
        raise UserError(f"{path}: top level is a {_type_name(experiment)}; expected a mapping (an Experiment)")
    if experiment.get("kind") != KIND:
        raise UserError(f"{path}: kind is {_show(experiment.get('kind'))}; expected {KIND}")
    if experiment.get("apiVersion") != API_VERSION:
        raise UserError(f"{path}: apiVersion is {_show(experiment.get('apiVersion'))}; expected {API_VERSION}")
    return experiment


def validate_experiment(experiment: dict) -> list[str]:
    """Every reason Katib would reject this Experiment, one line each; [] means valid."""
    if not isinstance(experiment, dict):
        return [f"Experiment: is a {_type_name(experiment)}; expected a mapping"]
    problems = _check_header(experiment)
    spec = experiment.get("spec")
    if not isinstance(spec, dict):
        return problems + [f"spec: is {_show(spec)}; expected a mapping with the Experiment spec"]
    parameter_problems = _check_parameters(spec)
    problems += _check_objective(spec)
    problems += _check_algorithm(spec)
    problems += _check_algorithm_settings(spec)
    problems += _check_early_stopping(spec)
    problems += _check_resume_policy(spec)
    problems += _check_trial_counts(spec)
    problems += parameter_problems
    problems += _check_grid(spec, parameters_valid=not parameter_problems)
    problems += _check_trial_template(spec)
    problems += _check_metrics_collector(spec)
    return problems


def check_experiment(experiment: dict) -> None:
    """Raise ExperimentInvalid (one line, every problem) unless Katib would accept it."""
    problems = validate_experiment(experiment)
    if problems:
        raise ExperimentInvalid(f"invalid Experiment {_experiment_name(experiment)}: " + "; ".join(problems))


def unchecked_parts(experiment: dict) -> list[str]:
    """What Katib would check that cannot be seen here: a trial template kept in a ConfigMap."""
    template = (experiment.get("spec") or {}).get("trialTemplate") if isinstance(experiment, dict) else None
    config_map = template.get("configMap") if isinstance(template, dict) else None
    if not isinstance(config_map, dict):
        return []
    where = f"{config_map.get('configMapNamespace')}/{config_map.get('configMapName')}"
    return [f"the trial template (ConfigMap {where}, {config_map.get('templatePath')}): its containers, "
            "trial parameters and their ${trialParameters.*} references"]


def grid_size(experiment: dict) -> int | None:
    """Number of points in the grid over spec.parameters, or None if it has no finite grid.

    Same counting as Katib's grid suggestion: categorical/discrete give one point
    per list entry; int gives min..max by step (default 1); double needs a step
    and counts min..max inclusive, with a tolerance so 0..0.3 by 0.1 is 4 points.
    """
    spec = experiment.get("spec") if isinstance(experiment, dict) else None
    parameters = spec.get("parameters") if isinstance(spec, dict) else None
    if not isinstance(parameters, list) or not parameters:
        return None
    size = 1
    for parameter in parameters:
        points = _parameter_grid_points(parameter)
        if points is None:
            return None
        size *= points
    return size


# ---------------------------------------------------------------- header


def _check_header(experiment: dict) -> Problems:
    problems: Problems = []
    if experiment.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: {_show(experiment.get('apiVersion'))}; expected {API_VERSION}")
    if experiment.get("kind") != KIND:
        problems.append(f"kind: {_show(experiment.get('kind'))}; expected {KIND}")
    metadata = experiment.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        problems.append(f"metadata.name: {_show(name)}; expected a non-empty name")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"metadata.name: {_show(name)} has {len(name)} characters; expected at most {MAX_NAME_LENGTH}")
    elif not _NAME_RE.fullmatch(name):
        # Katib's webhook checks only a prefix, but the name also names the
        # Suggestion Service, which must be a full DNS-1035 label.
        problems.append(
            f"metadata.name: {_show(name)}; expected lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return problems


# ---------------------------------------------------------------- objective


def _check_objective(spec: dict) -> Problems:
    objective = spec.get("objective")
    if not isinstance(objective, dict):
        return [f"spec.objective: {_show(objective)}; expected a mapping with type and objectiveMetricName"]
    problems: Problems = []
    objective_type = objective.get("type")
    if objective_type not in OBJECTIVE_TYPES:
        problems.append(f"spec.objective.type: {_show(objective_type)}; expected maximize or minimize")
    metric = objective.get("objectiveMetricName")
    if not isinstance(metric, str) or not metric:
        problems.append(f"spec.objective.objectiveMetricName: {_show(metric)}; expected a non-empty metric name")
    additional = objective.get("additionalMetricNames")
    if additional is not None:
        if not isinstance(additional, list) or not all(isinstance(m, str) for m in additional):
            problems.append(f"spec.objective.additionalMetricNames: {_show(additional)}; expected a list of names")
        elif metric in additional:
            problems.append(
                f"spec.objective.additionalMetricNames: contains the objective metric {_show(metric)}; "
                "expected only the other metrics"
            )
    goal = objective.get("goal")
    if goal is not None and not _is_number(goal):
        problems.append(f"spec.objective.goal: {_show(goal)}; expected a number (unquoted)")
    problems += _check_metric_strategies(objective)
    return problems


def _check_metric_strategies(objective: dict) -> Problems:
    strategies = objective.get("metricStrategies")
    if strategies is None:
        return []
    if not isinstance(strategies, list):
        return [f"spec.objective.metricStrategies: {_show(strategies)}; expected a list of name/value"]
    problems: Problems = []
    for i, strategy in enumerate(strategies):
        value = strategy.get("value") if isinstance(strategy, dict) else None
        if value not in METRIC_STRATEGIES:
            problems.append(f"spec.objective.metricStrategies[{i}].value: {_show(value)}; expected min, max or latest")
    return problems


# ---------------------------------------------------------------- algorithm


def _check_algorithm(spec: dict) -> Problems:
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict):
        return [f"spec.algorithm: {_show(algorithm)}; expected a mapping with algorithmName"]
    name = algorithm.get("algorithmName")
    if name not in ALGORITHMS:
        return [f"spec.algorithm.algorithmName: {_show(name)}; expected one of {', '.join(sorted(ALGORITHMS))}"]
    return []


def _check_algorithm_settings(spec: dict) -> Problems:
    """The suggestion service's ValidateAlgorithmSettings: it fails the Experiment after admission."""
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict) or algorithm.get("algorithmName") not in ALGORITHMS:
        return []
    name = algorithm["algorithmName"]
    settings, problems = _settings("spec.algorithm.algorithmSettings", algorithm.get("algorithmSettings"))
    path = "spec.algorithm.algorithmSettings"
    if name in _SETTING_RULES:
        problems += _check_known_settings(path, name, settings, _SETTING_RULES[name])
    if name == "hyperband":
        problems += _check_hyperband(spec, settings)
    if name == "cmaes":
        problems += _check_cmaes(spec)
    return problems


def _settings(path: str, raw: Any) -> tuple[dict[str, str], Problems]:
    """Read a name/value settings list; values must be strings in Katib's Go types."""
    if raw is None:
        return {}, []
    if not isinstance(raw, list):
        return {}, [f"{path}: {_show(raw)}; expected a list of name/value settings"]
    settings: dict[str, str] = {}
    problems: Problems = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            problems.append(f"{path}[{i}]: {_show(item)}; expected a mapping with a name and a value")
            continue
        value = item.get("value")
        if not isinstance(value, str):
            problems.append(
                f"{path}[{i}] ({item['name']}): value {_show(value)} is not a string; "
                f"Katib decodes setting values as strings, quote it"
            )
            continue
        settings[item["name"]] = value
    return settings, problems


# A setting check returns what was expected when the value is bad, None when fine.
SettingCheck = Callable[[str], "str | None"]


def _int_at_least(low: int) -> SettingCheck:
    def check(value: str) -> str | None:
        number = _to_int(value)
        return None if number is not None and number >= low else f"an integer >= {low}"
    return check


def _float_check(test: Callable[[float], bool], expected: str) -> SettingCheck:
    def check(value: str) -> str | None:
        number = _to_float(value)
        return None if number is not None and test(number) else expected
    return check


def _one_of(*choices: str) -> SettingCheck:
    def check(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)
    return check


_SEED = _int_at_least(0)

# Settings each suggestion service accepts; the optuna, hyperopt and skopt
# services reject any other name. tpe may be served by hyperopt or by optuna /
# goptuna depending on katib-config, so it accepts the names of both.
_SETTING_RULES: dict[str, dict[str, SettingCheck]] = {
    "random": {"random_state": _SEED},
    "grid": {"random_state": _SEED},
    "tpe": {
        "random_state": _SEED,
        "n_startup_trials": _int_at_least(0),
        "n_ei_candidates": _int_at_least(0),
        "n_EI_candidates": _int_at_least(1),
        "gamma": _float_check(lambda g: 0 < g < 1, "a number between 0 and 1 (exclusive)"),
        "prior_weight": _float_check(lambda w: w > 0, "a number > 0"),
    },
    "multivariate-tpe": {
        "random_state": _SEED,
        "n_startup_trials": _int_at_least(0),
        "n_ei_candidates": _int_at_least(0),
    },
    "cmaes": {
        "random_state": _SEED,
        "sigma": _float_check(lambda s: s >= 0, "a number >= 0"),
        "restart_strategy": _one_of("ipop", "bipop", "none", "None"),
    },
    "bayesianoptimization": {
        "random_state": _SEED,
        "n_initial_points": _int_at_least(0),
        "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
        "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
    },
}


def _check_known_settings(
    path: str, algorithm: str, settings: dict[str, str], rules: dict[str, SettingCheck]
) -> Problems:
    problems: Problems = []
    for name, value in settings.items():
        if name not in rules:
            problems.append(
                f"{path} ({name}): unknown setting for {algorithm}; expected one of {', '.join(rules)}"
            )
            continue
        expected = rules[name](value)
        if expected:
            problems.append(f"{path} ({name}): {_show(value)}; expected {expected}")
    return problems


def _check_hyperband(spec: dict, settings: dict[str, str]) -> Problems:
    """Hyperband needs a budget (r_l) on a named parameter and enough parallel trials per bracket."""
    path = "spec.algorithm.algorithmSettings"
    problems: Problems = []
    resource = settings.get("resource_name")
    r_l_text = settings.get("r_l")
    if resource is None or r_l_text is None:
        missing = [n for n in ("r_l", "resource_name") if n not in settings]
        return [f"{path}: hyperband needs {' and '.join(missing)}; expected settings r_l and resource_name"]
    names = [p.get("name") for p in _parameter_list(spec) if isinstance(p, dict)]
    if resource not in names:
        problems.append(f"{path} (resource_name): {_show(resource)} is not in spec.parameters; expected one of {names}")
    r_l = _to_float(r_l_text)
    if r_l is None or r_l <= 0:
        return problems + [f"{path} (r_l): {_show(r_l_text)}; expected a number > 0"]
    eta_text = settings.get("eta")
    eta = DEFAULT_HYPERBAND_ETA
    if eta_text is not None:
        eta_value = _to_float(eta_text)
        if eta_value is None:
            return problems + [f"{path} (eta): {_show(eta_text)}; expected an integer >= 2"]
        # Katib truncates eta to an int and falls back to 3 when it is not positive.
        eta = int(eta_value) if int(eta_value) > 0 else DEFAULT_HYPERBAND_ETA
        if eta == 1:
            return problems + [f"{path} (eta): {_show(eta_text)}; expected an integer >= 2"]
    # Same float arithmetic as Katib's validator, so the bound matches what it enforces.
    s_max = int(math.log(r_l) / math.log(eta))
    needed = int(math.ceil(eta**s_max))
    parallel = spec.get("parallelTrialCount", DEFAULT_PARALLEL_TRIAL_COUNT)
    if _is_int(parallel) and parallel < needed:
        problems.append(
            f"spec.parallelTrialCount: {parallel}; hyperband with r_l={r_l_text}, eta={eta} "
            f"expected at least {needed}"
        )
    return problems


def _check_cmaes(spec: dict) -> Problems:
    continuous = [
        p for p in _parameter_list(spec) if isinstance(p, dict) and p.get("parameterType") in ("double", "int")
    ]
    if len(continuous) < 2:
        return [
            f"spec.parameters: cmaes has {len(continuous)} double/int parameter(s); "
            "expected at least 2 (CMA-ES needs a search space of two or more dimensions)"
        ]
    return []


# ---------------------------------------------------------------- early stopping and resume


def _check_early_stopping(spec: dict) -> Problems:
    early = spec.get("earlyStopping")
    if early is None:
        return []
    path = "spec.earlyStopping"
    if not isinstance(early, dict):
        return [f"{path}: {_show(early)}; expected a mapping with algorithmName"]
    name = early.get("algorithmName")
    if name not in EARLY_STOPPING_ALGORITHMS:
        return [f"{path}.algorithmName: {_show(name)}; expected one of {', '.join(sorted(EARLY_STOPPING_ALGORITHMS))}"]
    settings, problems = _settings(f"{path}.algorithmSettings", early.get("algorithmSettings"))
    rules = {"min_trials_required": _int_at_least(1), "start_step": _int_at_least(1)}
    return problems + _check_known_settings(f"{path}.algorithmSettings", name, settings, rules)


def _check_resume_policy(spec: dict) -> Problems:
    policy = spec.get("resumePolicy")
    if policy is None or policy in RESUME_POLICIES:
        return []
    return [f"spec.resumePolicy: {_show(policy)}; expected one of {', '.join(RESUME_POLICIES)}"]


# ---------------------------------------------------------------- trial counts


def _check_trial_counts(spec: dict) -> Problems:
    problems: Problems = []
    counts: dict[str, int] = {}
    for field, low in (("maxTrialCount", 1), ("parallelTrialCount", 1), ("maxFailedTrialCount", 0)):
        if field not in spec:
            continue
        value = spec[field]
        if not _is_int(value) or value < low:
            problems.append(f"spec.{field}: {_show(value)}; expected an integer >= {low}")
        else:
            counts[field] = value
    max_trials = counts.get("maxTrialCount")
    if max_trials is None:
        return problems
    # The defaulting webhook sets parallelTrialCount to 3 before validation runs.
    if "parallelTrialCount" not in spec and DEFAULT_PARALLEL_TRIAL_COUNT > max_trials:
        problems.append(
            f"spec.parallelTrialCount: unset, so Katib uses {DEFAULT_PARALLEL_TRIAL_COUNT}, more than "
            f"spec.maxTrialCount {max_trials}; expected parallelTrialCount <= maxTrialCount"
        )
    parallel = counts.get("parallelTrialCount")
    if parallel is not None and parallel > max_trials:
        problems.append(
            f"spec.parallelTrialCount: {parallel}; expected <= spec.maxTrialCount {max_trials}"
        )
    failed = counts.get("maxFailedTrialCount")
    if failed is not None and failed > max_trials:
        problems.append(f"spec.maxFailedTrialCount: {failed}; expected <= spec.maxTrialCount {max_trials}")
    return problems


# ---------------------------------------------------------------- parameters


def _parameter_list(spec: dict) -> list:
    parameters = spec.get("parameters")
    return parameters if isinstance(parameters, list) else []


def _check_parameters(spec: dict) -> Problems:
    parameters = spec.get("parameters")
    has_nas = spec.get("nasConfig") is not None
    if parameters is not None and not isinstance(parameters, list):
        return [f"spec.parameters: {_show(parameters)}; expected a list of parameters"]
    if not parameters:
        if has_nas:
            return []
        return ["spec.parameters: empty; expected at least one parameter (or a spec.nasConfig)"]
    problems: Problems = []
    if has_nas:
        problems.append("spec: has both parameters and nasConfig; expected only one of them")
    seen: set[str] = set()
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            problems.append(f"spec.parameters[{i}]: {_show(parameter)}; expected a mapping")
            continue
        name = parameter.get("name")
        path = f"spec.parameters[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")
        if not isinstance(name, str) or not name:
            problems.append(f"{path}: name {_show(name)}; expected a non-empty name")
        elif name in seen:
            problems.append(f"{path}: duplicate parameter name {_show(name)}; expected unique names")
        else:
            seen.add(name)
        problems += _check_one_parameter(path, parameter)
    return problems


def _check_one_parameter(path: str, parameter: dict) -> Problems:
    kind = parameter.get("parameterType")
    if kind not in PARAMETER_TYPES:
        return [f"{path}: parameterType {_show(kind)}; expected one of {', '.join(PARAMETER_TYPES)}"]
    space = parameter.get("feasibleSpace")
    if not isinstance(space, dict) or not space:
        return [f"{path}: feasibleSpace {_show(space)}; expected a mapping with the values to search"]
    problems = _check_space_strings(path, space)
    distribution = space.get("distribution")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        problems.append(
            f"{path}: feasibleSpace.distribution {_show(distribution)}; expected one of {', '.join(DISTRIBUTIONS)}"
        )
    if kind in ("double", "int"):
        problems += _check_range(path, kind, space)
    else:
        problems += _check_list(path, kind, space)
    return problems


def _check_space_strings(path: str, space: dict) -> Problems:
    """min/max/step and list entries are Go strings: a YAML number fails Katib's decoder."""
    problems: Problems = []
    for key in ("min", "max", "step"):
        value = space.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(
                f"{path}: feasibleSpace.{key} {_show(value)} is not a string; Katib reads it as a string, "
                f"quote it (\"{value}\")"
            )
    entries = space.get("list")
    if isinstance(entries, list):
        numbers = [entry for entry in entries if not isinstance(entry, str)]
        if numbers:
            problems.append(
                f"{path}: feasibleSpace.list entries {_show(numbers)} are not strings; "
                "Katib reads list entries as strings, quote them"
            )
    return problems


def _check_range(path: str, kind: str, space: dict) -> Problems:
    problems: Problems = []
    if space.get("list"):
        problems.append(f"{path}: type {kind} takes min/max, not feasibleSpace.list {_show(space['list'])}")
    if space.get("min") in (None, "") or space.get("max") in (None, ""):
        return problems + [f"{path}: type {kind} needs feasibleSpace.min and max"]
    parse = _to_int if kind == "int" else _to_float
    expected = "an integer" if kind == "int" else "a number"
    low, high = parse(space["min"]), parse(space["max"])
    if low is None:
        problems.append(f"{path}: feasibleSpace.min {_show(space['min'])}; expected {expected}")
    if high is None:
        problems.append(f"{path}: feasibleSpace.max {_show(space['max'])}; expected {expected}")
    if low is not None and high is not None and low > high:
        problems.append(
            f"{path}: feasibleSpace.min {_show(space['min'])} > max {_show(space['max'])}; expected min <= max"
        )
    step = space.get("step")
    if step not in (None, ""):
        step_value = parse(step)
        if step_value is None or step_value <= 0:
            problems.append(f"{path}: feasibleSpace.step {_show(step)}; expected {expected} > 0")
    # Optuna and hyperopt take the log of the bounds of a log-scaled range.
    if space.get("distribution") in ("logUniform", "logNormal") and low is not None and low <= 0:
        problems.append(
            f"{path}: feasibleSpace.min {_show(space['min'])} with distribution {space['distribution']}; "
            "expected min > 0 (the range is searched on a log scale)"
        )
    return problems


def _check_list(path: str, kind: str, space: dict) -> Problems:
    problems: Problems = []
    extra = [key for key in ("min", "max", "step") if space.get(key) not in (None, "")]
    if extra:
        problems.append(f"{path}: type {kind} takes feasibleSpace.list only; remove {', '.join(extra)}")
    entries = space.get("list")
    if not isinstance(entries, list) or not entries:
        return problems + [f"{path}: type {kind} needs a non-empty feasibleSpace.list, got {_show(entries)}"]
    if kind == "discrete":
        # Suggestion services parse discrete values as numbers.
        bad = [entry for entry in entries if _to_float(entry) is None]
        if bad:
            problems.append(
                f"{path}: discrete list values {_show(bad)} are not numbers; expected numbers (or use categorical)"
            )
    return problems


# ---------------------------------------------------------------- grid


def _check_grid(spec: dict, parameters_valid: bool) -> Problems:
    """Grid needs a finite grid, and Katib's grid service refuses more trials than points."""
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict) or algorithm.get("algorithmName") != "grid":
        return []
    problems: Problems = []
    for i, parameter in enumerate(_parameter_list(spec)):
        if not isinstance(parameter, dict) or parameter.get("parameterType") != "double":
            continue
        space = parameter.get("feasibleSpace")
        if not isinstance(space, dict) or space.get("step") in (None, ""):
            problems.append(
                f"spec.parameters[{i}] ({parameter.get('name')}): grid needs feasibleSpace.step for a double parameter"
            )
    if problems or not parameters_valid:
        return problems  # the size is meaningless until each parameter is fixed
    size = grid_size({"spec": spec})
    if size is None:
        return ["spec.parameters: the grid size cannot be computed; expected every parameter to have a finite grid"]
    max_trials = spec.get("maxTrialCount")
    if _is_int(max_trials) and max_trials > size:
        problems.append(f"spec.maxTrialCount: {max_trials}; grid has only {size} points, expected <= {size}")
    return problems


def _parameter_grid_points(parameter: Any) -> int | None:
    if not isinstance(parameter, dict) or not isinstance(parameter.get("feasibleSpace"), dict):
        return None
    kind, space = parameter.get("parameterType"), parameter["feasibleSpace"]
    if kind in ("categorical", "discrete"):
        entries = space.get("list")
        return len(entries) if isinstance(entries, list) and entries else None
    if kind == "int":
        low, high = _to_int(space.get("min")), _to_int(space.get("max"))
        step = 1 if space.get("step") in (None, "") else _to_int(space.get("step"))
        if low is None or high is None or step is None or step <= 0 or low > high:
            return None
        return (high - low) // step + 1
    if kind == "double":
        low, high, step = (_to_float(space.get(key)) for key in ("min", "max", "step"))
        if low is None or high is None or step is None or step <= 0 or low > high:
            return None
        return math.floor((high - low) / step + _FLOAT_TOLERANCE) + 1
    return None


# ---------------------------------------------------------------- trial template


def _check_trial_template(spec: dict) -> Problems:
    template = spec.get("trialTemplate")
    path = "spec.trialTemplate"
    if not isinstance(template, dict):
        return [f"{path}: {_show(template)}; expected a mapping with trialSpec or configMap"]
    source_problems = _check_trial_source(template)
    problems = source_problems + _check_trial_parameters(spec, template)
    trial_spec = template.get("trialSpec") if not source_problems and "configMap" not in template else None
    if trial_spec is not None:
        problems += _check_placeholders(template, trial_spec)
        problems += _check_trial_spec_shape(trial_spec)
        problems += _check_job_fields(trial_spec)
    problems += _check_primary_container(template, trial_spec)
    if not source_problems:  # which conditions are needed depends on the source
        problems += _check_conditions(template, trial_spec)
    return problems


def _check_trial_source(template: dict) -> Problems:
    path = "spec.trialTemplate"
    has_spec, has_map = "trialSpec" in template, "configMap" in template
    if has_spec and has_map:
        return [f"{path}: has both trialSpec and configMap; expected exactly one"]
    if not has_spec and not has_map:
        return [f"{path}: has neither trialSpec nor configMap; expected exactly one"]
    if has_spec and not isinstance(template["trialSpec"], dict):
        return [f"{path}.trialSpec: {_show(template['trialSpec'])}; expected a Kubernetes resource mapping"]
    if has_map:
        config_map = template["configMap"]
        keys = ("configMapName", "configMapNamespace", "templatePath")
        missing = [k for k in keys if not isinstance(config_map, dict) or not config_map.get(k)]
        if missing:
            return [f"{path}.configMap: missing {', '.join(missing)}; expected {', '.join(keys)}"]
    return []


def _check_trial_parameters(spec: dict, template: dict) -> Problems:
    path = "spec.trialTemplate.trialParameters"
    declared = template.get("trialParameters")
    if declared is None:
        return [f"{path}: missing; expected a list of name/reference pairs"]
    if not isinstance(declared, list):
        return [f"{path}: {_show(declared)}; expected a list of name/reference pairs"]
    search_names = {p.get("name") for p in _parameter_list(spec) if isinstance(p, dict)}
    problems: Problems = []
    names: set[str] = set()
    references: set[str] = set()
    for i, item in enumerate(declared):
        name = item.get("name") if isinstance(item, dict) else None
        reference = item.get("reference") if isinstance(item, dict) else None
        label = f"{path}[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")
        if not isinstance(name, str) or not name or not isinstance(reference, str) or not reference:
            problems.append(f"{label}: name {_show(name)}, reference {_show(reference)}; expected both non-empty")
            continue
        if "{" in name or "}" in name:
            problems.append(f"{label}: name {_show(name)}; expected no '{{' or '}}'")
            continue
        if name in names:
            problems.append(f"{label}: duplicate name {_show(name)}; expected unique trialParameter names")
            continue
        if reference in references:
            problems.append(f"{label}: duplicate reference {_show(reference)}; expected each reference once")
            continue
        names.add(name)
        references.add(reference)
        # Katib checks references only when there are search parameters (not for NAS).
        if search_names and reference not in search_names and not _is_meta_reference(reference):
            problems.append(
                f"{label}: reference {_show(reference)} is not a spec.parameters name; expected one of "
                f"{sorted(n for n in search_names if isinstance(n, str))} or a trial metadata reference "
                "like ${trialSpec.Name}"
            )
    return problems


def _is_meta_reference(reference: str) -> bool:
    """${trialSpec.Name|Namespace|Kind|APIVersion} or ${trialSpec.Labels[k]|Annotations[k]}."""
    match = _META_REFERENCE_RE.fullmatch(reference)
    if not match:
        return False
    key = match.group(1)
    if key in TRIAL_META_KEYS:
        return True
    indexed = _META_INDEXED_RE.fullmatch(key)
    return bool(indexed) and indexed.group(1) in TRIAL_META_INDEXED_KEYS


def _check_placeholders(template: dict, trial_spec: dict) -> Problems:
    """Every ${trialParameters.X} in the trialSpec is declared, and every declared one is used."""
    declared_items = template.get("trialParameters")
    if not isinstance(declared_items, list):
        return []  # already reported by _check_trial_parameters
    declared = [
        item["name"] for item in declared_items
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]
    ]
    used: list[str] = []
    for text in _strings_in(trial_spec):
        used += _PLACEHOLDER_RE.findall(text)
    problems: Problems = []
    for name in dict.fromkeys(used):
        if name not in declared:
            problems.append(
                f"spec.trialTemplate.trialSpec: uses ${{trialParameters.{name}}}, which "
                "spec.trialTemplate.trialParameters does not declare; expected a declared name"
            )
    for name in dict.fromkeys(declared):
        if name not in used:
            problems.append(
                f"spec.trialTemplate.trialParameters ({name}): never used as ${{trialParameters.{name}}} "
                "in spec.trialTemplate.trialSpec; expected each declared parameter to be used"
            )
    return problems


def _check_trial_spec_shape(trial_spec: dict) -> Problems:
    path = "spec.trialTemplate.trialSpec"
    problems: Problems = []
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        problems.append(
            f"{path}: apiVersion {_show(trial_spec.get('apiVersion'))}, kind {_show(trial_spec.get('kind'))}; "
            "expected both set"
        )
    metadata = trial_spec.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "namespace"):
            if metadata.get(key):
                problems.append(
                    f"{path}.metadata.{key}: {_show(metadata[key])}; expected it omitted (Katib names each trial)"
                )
    return problems


def _check_job_fields(trial_spec: dict) -> Problems:
    """Katib converts a batch/v1 Job trialSpec to Kubernetes' Job type and rejects what does not survive.

    Unknown fields (a typo such as `imagee`) and wrong value types (`value: 7` in an
    env var) are caught with the kubernetes client's models; other kinds are CRDs
    that Katib does not check.
    """
    if trial_spec.get("apiVersion") != "batch/v1" or trial_spec.get("kind") != "Job":
        return []
    try:
        from kubernetes import client
    except ImportError:  # the check is a convenience, not a dependency of validation
        return []
    problems: Problems = []
    _check_model_value(client, trial_spec, "V1Job", "spec.trialTemplate.trialSpec", problems)
    return problems


_PRIMITIVE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "datetime": (lambda v: isinstance(v, str), "a timestamp string"),
    "int": (lambda v: _is_int(v), "an integer"),
    "float": (lambda v: _is_number(v), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}
# Resource quantities are strings in the client's models but Go also reads numbers ("cpu: 1").
_QUANTITY_KEYS = ("limits", "requests", "sizeLimit")


def _check_model_value(client: Any, value: Any, type_name: str, path: str, problems: Problems) -> None:
    if value is None or type_name == "object":
        return  # null is accepted anywhere; `object` is int-or-string or free-form
    if type_name.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{path}: {_show(value)}; expected a list")
            return
        for i, item in enumerate(value):
            _check_model_value(client, item, type_name[5:-1], f"{path}[{i}]", problems)
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            problems.append(f"{path}: {_show(value)}; expected a mapping")
            return
        item_type = type_name[type_name.index(",") + 1 : -1].strip()
        for key, item in value.items():
            _check_model_value(client, item, item_type, f"{path}.{key}", problems)
        return
    if type_name in _PRIMITIVE_CHECKS:
        accepts, expected = _PRIMITIVE_CHECKS[type_name]
        is_quantity = any(f".{key}" in path for key in _QUANTITY_KEYS) and _is_number(value)
        if not accepts(value) and not is_quantity:
            problems.append(f"{path}: {_show(value)}; expected {expected}")
        return
    model = getattr(client, type_name, None)
    if model is None:
        return  # a type this client does not describe: nothing to compare against
    if not isinstance(value, dict):
        problems.append(f"{path}: {_show(value)}; expected a mapping")
        return
    attribute_for = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    for key, item in value.items():
        if key not in attribute_for:
            problems.append(f"{path}.{key}: unknown field of a batch/v1 Job; Katib rejects fields it cannot convert")
            continue
        _check_model_value(client, item, model.openapi_types[attribute_for[key]], f"{path}.{key}", problems)


def _check_primary_container(template: dict, trial_spec: dict | None) -> Problems:
    path = "spec.trialTemplate.primaryContainerName"
    primary = template.get("primaryContainerName")
    if not isinstance(primary, str) or not primary:
        return [f"{path}: {_show(primary)}; expected the name of the container that reports metrics"]
    if trial_spec is None:
        return []  # a configMap template is not visible here
    containers = _container_names(trial_spec)
    if not containers:
        if trial_spec.get("kind") in POD_TEMPLATE_KINDS:
            return [f"spec.trialTemplate.trialSpec: no containers found; expected one named {_show(primary)}"]
        return []  # other kinds (Argo, Tekton, TrainJob) keep containers elsewhere
    if primary not in containers:
        return [f"{path}: {_show(primary)} is not a container in the trialSpec; expected one of {sorted(containers)}"]
    return []


def _check_conditions(template: dict, trial_spec: dict | None) -> Problems:
    """Katib fills the conditions only for a trialSpec of a known job kind."""
    kind = trial_spec.get("kind") if trial_spec is not None else None
    if kind in KINDS_WITH_DEFAULT_CONDITIONS:
        return []
    missing = [key for key in ("successCondition", "failureCondition") if not template.get(key)]
    if not missing:
        return []
    source = f"trialSpec kind {_show(kind)}" if trial_spec is not None else "a configMap trial template"
    return [
        f"spec.trialTemplate: {' and '.join(missing)} missing for {source}; expected both "
        f"(Katib fills them only for {', '.join(sorted(KINDS_WITH_DEFAULT_CONDITIONS))})"
    ]


def _container_names(node: Any) -> set[str]:
    """Names from every `containers` list anywhere in the trialSpec (Job, TFJob replicas, ...)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                names |= {c["name"] for c in value if isinstance(c, dict) and isinstance(c.get("name"), str)}
            else:
                names |= _container_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _container_names(item)
    return names


def _strings_in(node: Any) -> list[str]:
    """Every string key and value, since Katib substitutes into the whole serialized template."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        found: list[str] = []
        for key, value in node.items():
            found += _strings_in(key) + _strings_in(value)
        return found
    if isinstance(node, list):
        return [text for item in node for text in _strings_in(item)]
    return []


# ---------------------------------------------------------------- metrics collector


def _check_metrics_collector(spec: dict) -> Problems:
    path = "spec.metricsCollectorSpec"
    collector_spec = spec.get("metricsCollectorSpec")
    if collector_spec is None:
        return []  # defaults to StdOut
    if not isinstance(collector_spec, dict):
        return [f"{path}: {_show(collector_spec)}; expected a mapping with collector and source"]
    collector = collector_spec.get("collector")
    if collector is None:
        kind = "StdOut"
    elif not isinstance(collector, dict):
        return [f"{path}.collector: {_show(collector)}; expected a mapping with kind"]
    else:
        kind = collector.get("kind")
    source = collector_spec.get("source")
    if source is not None and not isinstance(source, dict):
        return [f"{path}.source: {_show(source)}; expected a mapping"]
    source = source or {}
    if kind == "None":
        return [f"{path}.collector.kind: 'None'; Katib renamed it Push, expected one of {', '.join(COLLECTOR_KINDS)}"]
    if kind not in COLLECTOR_KINDS:
        return [f"{path}.collector.kind: {_show(kind)}; expected one of {', '.join(COLLECTOR_KINDS)}"]
    problems: Problems = []
    if kind == "File":
        problems += _check_file_source(source)
    elif kind == "TensorFlowEvent":
        problems += _check_tfevent_source(source)
    elif kind == "PrometheusMetric":
        problems += _check_prometheus_source(source)
    elif kind == "Custom":
        problems += _check_custom_collector(collector or {}, source)
    # Katib's webhook checks filters only for collectors other than StdOut/Push; the
    # StdOut collector applies them too, so a bad one is checked for every kind.
    problems += _check_filter(source)
    return problems


def _file_system_path(source: dict) -> tuple[dict, Problems]:
    fsp = source.get("fileSystemPath")
    if fsp is None:
        return {}, []
    if not isinstance(fsp, dict):
        return {}, [
            f"spec.metricsCollectorSpec.source.fileSystemPath: {_show(fsp)}; expected a mapping with path and kind"
        ]
    return fsp, []


def _check_file_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.fileSystemPath"
    fsp, problems = _file_system_path(source)
    if problems:
        return problems
    # Katib's defaults: kind File, path /var/log/katib/metrics.log, format TEXT.
    if fsp.get("kind", "File") != "File":
        problems.append(f"{path}.kind: {_show(fsp.get('kind'))}; collector File expected kind File")
    file_path = fsp.get("path", "/var/log/katib/metrics.log")
    if not _is_absolute(file_path):
        problems.append(f"{path}.path: {_show(file_path)}; collector File expected an absolute file path")
    file_format = fsp.get("format", "TEXT")
    if file_format not in FILE_FORMATS:
        problems.append(f"{path}.format: {_show(file_format)}; expected TEXT or JSON")
    elif file_format == "JSON" and source.get("filter") is not None:
        problems.append(
            "spec.metricsCollectorSpec.source.filter: set with format JSON; expected no filter for JSON metrics files"
        )
    return problems


def _check_tfevent_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.fileSystemPath"
    fsp, problems = _file_system_path(source)
    if problems:
        return problems
    # Katib's defaults: kind Directory, path /var/log/katib/tfevent/.
    if fsp.get("kind", "Directory") != "Directory":
        problems.append(f"{path}.kind: {_show(fsp.get('kind'))}; collector TensorFlowEvent expected kind Directory")
    directory = fsp.get("path", "/var/log/katib/tfevent/")
    if not _is_absolute(directory):
        problems.append(
            f"{path}.path: {_show(directory)}; collector TensorFlowEvent expected an absolute directory path"
        )
    if fsp.get("format"):
        problems.append(f"{path}.format: {_show(fsp['format'])}; collector TensorFlowEvent expected no format")
    return problems


def _check_prometheus_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.httpGet"
    http_get = source.get("httpGet") or {}
    if not isinstance(http_get, dict):
        return [f"{path}: {_show(http_get)}; expected a mapping with port and path"]
    problems: Problems = []
    port = http_get.get("port", 8080)
    port_number = port if _is_int(port) else _to_int(port) if isinstance(port, str) else None
    if port_number is None or port_number <= 0:
        problems.append(f"{path}.port: {_show(port)}; expected a positive port number")
    url_path = http_get.get("path", "/metrics")
    if not isinstance(url_path, str) or not url_path.startswith("/"):
        problems.append(f"{path}.path: {_show(url_path)}; expected a path starting with '/'")
    return problems


def _check_custom_collector(collector: dict, source: dict) -> Problems:
    problems: Problems = []
    if not isinstance(collector.get("customCollector"), dict):
        problems.append(
            f"spec.metricsCollectorSpec.collector.customCollector: {_show(collector.get('customCollector'))}; "
            "collector Custom expected a container spec"
        )
    fsp, fsp_problems = _file_system_path(source)
    problems += fsp_problems
    if fsp and (not _is_absolute(fsp.get("path")) or fsp.get("kind") not in ("File", "Directory")):
        problems.append(
            f"spec.metricsCollectorSpec.source.fileSystemPath: path {_show(fsp.get('path'))}, kind "
            f"{_show(fsp.get('kind'))}; expected an absolute path and kind File or Directory"
        )
    return problems


def _check_filter(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.filter.metricsFormat"
    filter_spec = source.get("filter")
    if filter_spec is None:
        return []
    formats = filter_spec.get("metricsFormat") if isinstance(filter_spec, dict) else None
    if formats is None:
        return []
    if not isinstance(formats, list):
        return [f"{path}: {_show(formats)}; expected a list of regular expressions"]
    problems: Problems = []
    for i, pattern in enumerate(formats):
        if not isinstance(pattern, str):
            problems.append(f"{path}[{i}]: {_show(pattern)}; expected a regular expression string")
            continue
        try:
            groups = re.compile(pattern).groups
        except re.error as err:
            problems.append(f"{path}[{i}]: {_show(pattern)} is not a valid regular expression ({err})")
            continue
        # The collector reads the metric name from the first group and the value from the second.
        if groups < 2:
            problems.append(
                f"{path}[{i}]: {_show(pattern)} has {groups} capture group(s); expected two, "
                "the metric name then its value"
            )
    return problems


# ---------------------------------------------------------------- small helpers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _to_int(value: Any) -> int | None:
    """An integer from a YAML int or an integer string ("12"), as Go's Atoi reads it."""
    if _is_int(value):
        return value
    if isinstance(value, str) and _INT_TEXT_RE.fullmatch(value):
        return int(value)
    return None


def _to_float(value: Any) -> float | None:
    """A finite number from a YAML number or a decimal string ("1e-3"); None otherwise."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT_RE.fullmatch(value):
        return float(value)
    return None


def _is_absolute(path: Any) -> bool:
    return isinstance(path, str) and path.startswith("/")


def _show(value: Any, limit: int = 80) -> str:
    """A short one-line rendering of a value for a message."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        text = "'" + value.replace("\r", "\\r").replace("\n", "\\n") + "'"
    else:
        text = " ".join(json.dumps(value, default=str, ensure_ascii=False).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _yaml_error_summary(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return _one_line(where + problem)


def _experiment_name(experiment: Any) -> str:
    metadata = experiment.get("metadata") if isinstance(experiment, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else "(unnamed)"
