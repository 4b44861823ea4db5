"""ValidateExperiment's own checks: the name, trial counts, objective, algorithm, early stopping, resume policy.

pkg/webhook/v1beta1/experiment/validator/validator.go at v0.19.0: ValidateExperiment,
validateObjective, validateAlgorithm, validateEarlyStopping and
validateResumePolicy. The algorithm's and early stopping's settings are checked
by their services (katib.validate.suggestion, katib.validate.earlystopping).
"""

from __future__ import annotations

import re

from katib.backends.local.katib_api import (
    API_VERSION,
    DEFAULT_PARALLEL_TRIAL_COUNT,
    EXPERIMENT_KIND,
    METRIC_STRATEGIES,
    OBJECTIVE_TYPES,
    RESUME_POLICIES,
)
from katib.validate.katib_config import ALGORITHMS, EARLY_STOPPING_ALGORITHMS
from katib.validate.values import Problems, is_int, is_number, show

_NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Katib v0.19.0's webhook (pkg/webhook/v1beta1/experiment/validator/validator.go, ValidateExperiment)
# refuses longer names: the name is a prefix of the Suggestion's and trials' object names.
MAX_NAME_LENGTH = 40


def check_header(experiment: dict) -> Problems:
    problems: Problems = []
    if experiment.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: {show(experiment.get('apiVersion'))}; expected {API_VERSION}")
    if experiment.get("kind") != EXPERIMENT_KIND:
        problems.append(f"kind: {show(experiment.get('kind'))}; expected {EXPERIMENT_KIND}")
    metadata = experiment.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        problems.append(f"metadata.name: {show(name)}; expected a non-empty name")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"metadata.name: {show(name)} has {len(name)} characters; expected at most {MAX_NAME_LENGTH}")
    elif not _NAME_RE.fullmatch(name):
        # Katib's webhook checks only a prefix, but the name also names the
        # Suggestion Service, which must be a full DNS-1035 label.
        problems.append(
            f"metadata.name: {show(name)}; expected lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return problems


# ---------------------------------------------------------------- objective


def check_objective(spec: dict) -> Problems:
    objective = spec.get("objective")
    if not isinstance(objective, dict):
        return [f"spec.objective: {show(objective)}; expected a mapping with type and objectiveMetricName"]
    problems: Problems = []
    objective_type = objective.get("type")
    if objective_type not in OBJECTIVE_TYPES:
        problems.append(f"spec.objective.type: {show(objective_type)}; expected maximize or minimize")
    metric = objective.get("objectiveMetricName")
    if not isinstance(metric, str) or not metric:
        problems.append(f"spec.objective.objectiveMetricName: {show(metric)}; expected a non-empty metric name")
    additional = objective.get("additionalMetricNames")
    if additional is not None:
        if not isinstance(additional, list) or not all(isinstance(m, str) for m in additional):
            problems.append(f"spec.objective.additionalMetricNames: {show(additional)}; expected a list of names")
        elif metric in additional:
            problems.append(
                f"spec.objective.additionalMetricNames: contains the objective metric {show(metric)}; "
                "expected only the other metrics"
            )
    goal = objective.get("goal")
    if goal is not None and not is_number(goal):
        problems.append(f"spec.objective.goal: {show(goal)}; expected a number (unquoted)")
    problems += _check_metric_strategies(objective)
    return problems


def _check_metric_strategies(objective: dict) -> Problems:
    strategies = objective.get("metricStrategies")
    if strategies is None:
        return []
    if not isinstance(strategies, list):
        return [f"spec.objective.metricStrategies: {show(strategies)}; expected a list of name/value"]
    problems: Problems = []
    for i, strategy in enumerate(strategies):
        value = strategy.get("value") if isinstance(strategy, dict) else None
        if value not in METRIC_STRATEGIES:
            problems.append(f"spec.objective.metricStrategies[{i}].value: {show(value)}; expected min, max or latest")
    return problems


# ---------------------------------------------------------------- algorithm, early stopping, resume policy


def check_algorithm(spec: dict) -> Problems:
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict):
        return [f"spec.algorithm: {show(algorithm)}; expected a mapping with algorithmName"]
    name = algorithm.get("algorithmName")
    if name not in ALGORITHMS:
        return [f"spec.algorithm.algorithmName: {show(name)}; expected one of {', '.join(sorted(ALGORITHMS))}"]
    return []


def check_early_stopping(spec: dict) -> Problems:
    early = spec.get("earlyStopping")
    if early is None:
        return []
    path = "spec.earlyStopping"
    if not isinstance(early, dict):
        return [f"{path}: {show(early)}; expected a mapping with algorithmName"]
    name = early.get("algorithmName")
    if name not in EARLY_STOPPING_ALGORITHMS:
        return [f"{path}.algorithmName: {show(name)}; expected one of {', '.join(sorted(EARLY_STOPPING_ALGORITHMS))}"]
    return []


def check_resume_policy(spec: dict) -> Problems:
    policy = spec.get("resumePolicy")
    if policy is None or policy in RESUME_POLICIES:
        return []
    return [f"spec.resumePolicy: {show(policy)}; expected one of {', '.join(RESUME_POLICIES)}"]


# ---------------------------------------------------------------- trial counts


def check_trial_counts(spec: dict) -> Problems:
    problems: Problems = []
    counts: dict[str, int] = {}
    for field, low in (("maxTrialCount", 1), ("parallelTrialCount", 1), ("maxFailedTrialCount", 0)):
        if field not in spec:
            continue
        value = spec[field]
        if not is_int(value) or value < low:
            problems.append(f"spec.{field}: {show(value)}; expected an integer >= {low}")
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
