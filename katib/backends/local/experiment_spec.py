"""The fields of a Katib v1beta1 Experiment that the local backend reads, with Katib's defaults.

The Experiment arrives as a plain dict (loaded from YAML and already
validated); this module reads it once into a typed :class:`ExperimentSpec` so
the rest of the backend never digs through nested dicts. Defaults follow
Katib's defaulting webhook (``experiment_defaults.go``): parallelTrialCount 3,
the StdOut metrics collector (:mod:`katib.backends.local.collector_spec`), and a
metric strategy per metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.core.errors import UserError
from katib.backends.local.collector_spec import CollectorSpec, read_collector
from katib.backends.local.katib_api import (
    DEFAULT_PARALLEL_TRIAL_COUNT,
    MAXIMIZE,
    METRIC_STRATEGIES,
    MINIMIZE,
    default_metric_strategy,
)
from katib.backends.local.normal_space import check_normal_algorithm, grid_parameters


@dataclass(frozen=True)
class ExperimentSpec:
    """What the local backend needs from ``metadata`` and ``spec`` of an Experiment."""

    name: str
    namespace: str
    objective_type: str
    objective_metric: str
    additional_metrics: tuple[str, ...]
    goal: float | None
    metric_strategies: dict[str, str]
    algorithm_name: str
    algorithm_settings: dict[str, str]
    early_stopping_name: str | None
    early_stopping_settings: dict[str, str]
    parameters: tuple[dict[str, Any], ...]
    max_trial_count: int | None
    max_failed_trial_count: int | None
    parallel_trial_count: int
    metrics_filters: tuple[str, ...]
    trial_template: dict[str, Any] = field(repr=False)
    metrics_collector: CollectorSpec = field(default_factory=CollectorSpec)

    @property
    def maximize(self) -> bool:
        return self.objective_type == MAXIMIZE

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Objective first, then additional metrics: the order Katib's collector gets them in."""
        return (self.objective_metric, *self.additional_metrics)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p["name"] for p in self.parameters)


def read_experiment(experiment: dict[str, Any]) -> ExperimentSpec:
    """Read an Experiment dict into an :class:`ExperimentSpec`, applying Katib's defaults."""
    if not isinstance(experiment, dict) or not isinstance(experiment.get("spec"), dict):
        raise UserError("the Experiment has no 'spec' mapping; expected a Katib v1beta1 Experiment")
    metadata = experiment.get("metadata") or {}
    spec = experiment["spec"]
    objective = _required(spec, "objective", "spec")
    objective_type = str(_required(objective, "type", "spec.objective")).lower()
    if objective_type not in (MAXIMIZE, MINIMIZE):
        raise UserError(f"spec.objective.type is {objective_type!r}; expected 'maximize' or 'minimize'")
    objective_metric = str(_required(objective, "objectiveMetricName", "spec.objective"))
    additional = tuple(str(m) for m in objective.get("additionalMetricNames") or ())
    algorithm = _required(spec, "algorithm", "spec")
    early_stopping = spec.get("earlyStopping") or {}
    collector = read_collector(spec.get("metricsCollectorSpec"))
    algorithm_name = str(_required(algorithm, "algorithmName", "spec.algorithm"))
    _refuse_nas(algorithm_name, spec)
    parameters = tuple(_required(spec, "parameters", "spec"))
    check_normal_algorithm(algorithm_name, parameters)
    if algorithm_name == "grid":
        parameters = grid_parameters(parameters)
    return ExperimentSpec(
        name=str(metadata.get("name") or "experiment"),
        namespace=str(metadata.get("namespace") or "default"),
        objective_type=objective_type,
        objective_metric=objective_metric,
        additional_metrics=additional,
        goal=_optional_float(objective.get("goal"), "spec.objective.goal"),
        metric_strategies=_metric_strategies(objective, objective_type, objective_metric, additional),
        algorithm_name=algorithm_name,
        algorithm_settings=_settings(algorithm.get("algorithmSettings"), "spec.algorithm.algorithmSettings"),
        early_stopping_name=early_stopping.get("algorithmName"),
        early_stopping_settings=_settings(
            early_stopping.get("algorithmSettings"), "spec.earlyStopping.algorithmSettings"
        ),
        parameters=parameters,
        max_trial_count=_optional_int(spec.get("maxTrialCount"), "spec.maxTrialCount"),
        max_failed_trial_count=_optional_int(spec.get("maxFailedTrialCount"), "spec.maxFailedTrialCount"),
        parallel_trial_count=_optional_int(spec.get("parallelTrialCount"), "spec.parallelTrialCount")
        or DEFAULT_PARALLEL_TRIAL_COUNT,
        metrics_filters=collector.filters,
        trial_template=_required(spec, "trialTemplate", "spec"),
        metrics_collector=collector,
    )


def search_fingerprint(spec: ExperimentSpec) -> dict[str, Any]:
    """The parts of an Experiment that must not change when a run folder is resumed.

    Counts (maxTrialCount, parallelTrialCount) and the goal may change between
    runs, as Katib lets a user raise maxTrialCount of a finished Experiment; the
    search space, objective and algorithm may not, or the stored Optuna study
    would no longer describe the sweep.
    """
    return {
        "parameters": list(spec.parameters),
        "objective": [spec.objective_type, spec.objective_metric],
        "algorithm": [spec.algorithm_name, spec.algorithm_settings],
    }


def _metric_strategies(
    objective: dict[str, Any], objective_type: str, objective_metric: str, additional: tuple[str, ...]
) -> dict[str, str]:
    """Katib's setDefaultObjective: explicit strategies win, every other metric gets
    ``max`` when maximizing and ``min`` when minimizing (the objective and, in the
    current defaulting code, the additional metrics too)."""
    default = default_metric_strategy(objective_type)
    strategies = {name: default for name in (objective_metric, *additional)}
    for entry in objective.get("metricStrategies") or ():
        value = str(entry.get("value", "")).lower()
        if value not in METRIC_STRATEGIES:
            raise UserError(
                f"spec.objective.metricStrategies: {entry.get('name')!r} has value {entry.get('value')!r};"
                f" expected one of {', '.join(METRIC_STRATEGIES)}"
            )
        strategies[str(entry["name"])] = value
    return strategies


# The algorithms Katib serves from spec.nasConfig (pkg/suggestion/v1beta1/nas/{enas,darts}, v0.19.0).
NAS_ALGORITHMS = ("enas", "darts")


def _refuse_nas(algorithm_name: str, spec: dict[str, Any]) -> None:
    if algorithm_name in NAS_ALGORITHMS or (spec.get("nasConfig") and not spec.get("parameters")):
        raise UserError(
            f"algorithm {algorithm_name!r} is a neural architecture search: Katib's NAS services build each trial's"
            " architecture from spec.nasConfig (ENAS's controller, DARTS's supernet), and they are not run"
            " locally; the local backend runs hyperparameter searches over spec.parameters"
        )


def _settings(entries: Any, where: str) -> dict[str, str]:
    """Katib's [{name, value}] settings list as a dict of strings (Katib passes strings)."""
    settings: dict[str, str] = {}
    for entry in entries or ():
        if not isinstance(entry, dict) or "name" not in entry:
            raise UserError(f"{where}: {entry!r} is not a {{name, value}} mapping")
        settings[str(entry["name"])] = str(entry.get("value", ""))
    return settings


def _required(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, "", []):
        raise UserError(f"the Experiment has no {where}.{key}; it is required")
    return mapping[key]


def _optional_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{where} is {value!r}; expected a whole number") from None


def _optional_float(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where} is {value!r}; expected a number") from None
