"""Check a Katib v1beta1 Experiment before Katib sees it, and list every problem at once.

Katib rejects a bad Experiment in three places: the admission webhook (after its
defaulting webhook has filled in defaults), the JSON decoder in front of the
webhook (a number where Katib's Go types hold a string), and the Suggestion or
EarlyStopping service's settings validator, which fails the Experiment only
after it was accepted. This package checks all three from the plain dict as
loaded from YAML, so a mistake costs one local run instead of a cluster round
trip. Unlike Katib, which stops at the first failing group, it reports every
problem, each on one line naming the field path, the bad value and what was
expected.

The checks sit where Katib keeps them (v0.19.0):

- ``webhook/``: pkg/webhook/v1beta1/experiment/validator/validator.go
- ``defaults.py``: pkg/apis/controller/experiments/v1beta1/experiment_defaults.go
- ``katib_config.py``: the algorithms the default katib-config registers
- ``suggestion/``: pkg/suggestion/v1beta1/<service>/ (hyperopt, optuna, goptuna, skopt, hyperband)
- ``earlystopping/``: pkg/earlystopping/v1beta1/medianstop/

Katib's API names, defaults and grid count are in ``katib.backends.local.katib_api``.
Where a check is stricter than Katib, a comment says why.
"""

from __future__ import annotations

from components.core.errors import UserError
from katib.validate.earlystopping.medianstop import check_early_stopping_settings
from katib.validate.load import inline_trial_template, load_experiment
from katib.validate.suggestion import check_algorithm_settings
from katib.validate.suggestion.optuna import check_grid, grid_size
from katib.validate.values import experiment_name, show, type_name
from katib.validate.webhook.experiment import (
    check_algorithm,
    check_early_stopping,
    check_header,
    check_objective,
    check_resume_policy,
    check_trial_counts,
)
from katib.validate.webhook.metrics_collector import check_metrics_collector
from katib.validate.webhook.parameters import check_parameters
from katib.validate.webhook.trial_template import check_trial_template, unchecked_parts

__all__ = [
    "ExperimentInvalid",
    "check_experiment",
    "grid_size",
    "inline_trial_template",
    "load_experiment",
    "unchecked_parts",
    "validate_experiment",
]


class ExperimentInvalid(UserError):
    """The Experiment would be rejected by Katib; the message lists every reason."""


def validate_experiment(experiment: dict) -> list[str]:
    """Every reason Katib would reject this Experiment, one line each; [] means valid."""
    if not isinstance(experiment, dict):
        return [f"Experiment: is a {type_name(experiment)}; expected a mapping"]
    problems = check_header(experiment)
    spec = experiment.get("spec")
    if not isinstance(spec, dict):
        return problems + [f"spec: is {show(spec)}; expected a mapping with the Experiment spec"]
    parameter_problems = check_parameters(spec)
    problems += check_objective(spec)
    problems += check_algorithm(spec)
    problems += check_algorithm_settings(spec)
    problems += check_early_stopping(spec)
    problems += check_early_stopping_settings(spec)
    problems += check_resume_policy(spec)
    problems += check_trial_counts(spec)
    problems += parameter_problems
    problems += check_grid(spec, parameters_valid=not parameter_problems)
    problems += check_trial_template(spec)
    problems += check_metrics_collector(spec)
    return problems


def check_experiment(experiment: dict) -> None:
    """Raise ExperimentInvalid (one line, every problem) unless Katib would accept it."""
    problems = validate_experiment(experiment)
    if problems:
        raise ExperimentInvalid(f"invalid Experiment {experiment_name(experiment)}: " + "; ".join(problems))
