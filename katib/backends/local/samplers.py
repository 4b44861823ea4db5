"""Katib algorithm name + algorithmSettings -> an Optuna sampler.

The setting names are Katib's (``random_state``, ``n_startup_trials``,
``sigma``, ...), converted the way Katib's Optuna suggestion service does
(``OptimizerConfiguration``); algorithms that Katib serves from other
libraries map to Optuna's closest sampler: tpe and random from hyperopt (tpe
gets hyperopt's gamma, prior_weight, n_EI_candidates and its 20 startup
trials), sobol from Goptuna, bayesianoptimization from scikit-optimize. A
setting Katib would reject is rejected here too.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from components.core.errors import UserError
from katib.backends.local.katib_api import DOUBLE, INT
from katib.backends.local.search_space import grid_search_space, parameter_type
from katib.backends.local.suggestion_service import SERVICE_ALGORITHMS

SettingConverter = Callable[[str], Any]


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _restart_strategy(text: str) -> str | None:
    if text in ("None", "none"):
        return None
    if text == "ipop":
        # Katib's optuna service (optuna==3.3.0, cmd/suggestion/optuna/v1beta1/requirements.txt) restarts with
        # a growing population; the Optuna pinned here (5.x) ignores restart_strategy since 4.4 (moved to
        # OptunaHub), so honouring it is not possible and ignoring it silently would mislead.
        raise ValueError("'ipop' restarts are not available: the Optuna version used here ignores"
                         " restart_strategy (since Optuna 4.4); omit the setting or set 'none'")
    raise ValueError("expected 'ipop' or 'none'")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be above 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def hyperopt_gamma(fraction: float, n: int) -> int:
    """How many of n trials count as "good": hyperopt 0.2.5's tpe, ceil(gamma * sqrt(n)) capped at its
    linear_forgetting of 25 (Optuna's hyperopt_default_gamma is this for gamma 0.25)."""
    return min(math.ceil(fraction * math.sqrt(n)), 25)


def _sigma(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _gaussian_process(text: str) -> str:
    if text.upper() != "GP":
        raise ValueError("only 'GP' has an Optuna equivalent (GPSampler)")
    return text


# Per algorithm: Katib setting name -> (Optuna keyword, converter). A keyword of
# None accepts the setting without passing it on (it names the default).
_SEED = ("seed", _non_negative_int)
_SETTINGS: dict[str, dict[str, tuple[str | None, SettingConverter]]] = {
    "grid": {"random_state": _SEED},
    "random": {"random_state": _SEED},
    # Katib serves tpe with hyperopt (pkg/suggestion/v1beta1/hyperopt/service.py): its settings, as Optuna's.
    "tpe": {
        "random_state": _SEED,
        "gamma": ("gamma", lambda text: functools.partial(hyperopt_gamma, _fraction(text))),
        "prior_weight": ("prior_weight", _positive_float),
        "n_EI_candidates": ("n_ei_candidates", _positive_int),
    },
    # multivariate-tpe is Katib's optuna service (pkg/suggestion/v1beta1/optuna/service.py).
    "multivariate-tpe": {
        "random_state": _SEED,
        "n_startup_trials": ("n_startup_trials", _non_negative_int),
        "n_ei_candidates": ("n_ei_candidates", _non_negative_int),
    },
    "cmaes": {
        "random_state": _SEED,
        "restart_strategy": ("restart_strategy", _restart_strategy),
        "sigma": ("sigma0", _sigma),
    },
    "sobol": {"random_state": _SEED},
    "bayesianoptimization": {
        "random_state": _SEED,
        "n_initial_points": ("n_startup_trials", _non_negative_int),
        "base_estimator": (None, _gaussian_process),
    },
}
# hyperopt 0.2.5's tpe.suggest defaults where Optuna's differ: 20 random trials first (n_startup_jobs)
# and its gamma of 0.25; prior_weight 1.0 and 24 EI candidates are the same in both.
HYPEROPT_TPE_DEFAULTS = {"n_startup_trials": 20, "gamma": functools.partial(hyperopt_gamma, 0.25)}

# Packages that some Optuna samplers import on first use.
_NEEDS: dict[str, tuple[str, ...]] = {
    "cmaes": ("cmaes",),
    "sobol": ("scipy",),
    "bayesianoptimization": ("torch", "scipy"),
}
# Of those, the ones the default install leaves out on purpose, with the extra that brings them:
# PyTorch on PyPI is a CUDA build of several GB, needed only for Optuna's GPSampler.
_EXTRAS: dict[str, str] = {"torch": "gp"}

# hyperband and pbt are Katib's own services (katib.backends.local.suggestion_service); they fix every
# value of a trial themselves, so their Optuna study needs only a sampler that is never consulted.
SUPPORTED_ALGORITHMS = tuple(_SETTINGS) + SERVICE_ALGORITHMS


def create_sampler(
    algorithm_name: str, settings: dict[str, str], parameters: tuple[dict[str, Any], ...]
) -> BaseSampler:
    """The Optuna sampler that runs ``algorithm_name`` over ``parameters``."""
    if algorithm_name in SERVICE_ALGORITHMS:
        return optuna.samplers.RandomSampler()
    if algorithm_name not in _SETTINGS:
        raise UserError(
            f"algorithm {algorithm_name!r} is not supported by the local Katib backend;"
            f" expected one of: {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    _require_packages(algorithm_name)
    kwargs = sampler_kwargs(algorithm_name, settings)
    # Optuna flags constant_liar/multivariate/QMC as experimental; that is expected here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna 4.9 deprecates TPE's gamma and prior_weight (to go in 6.0): hyperopt's tpe needs them,
        # and the pinned Optuna still has them; a user cannot act on the warning.
        warnings.filterwarnings("ignore", r"`(gamma|prior_weight)` has been deprecated", FutureWarning)
        return _BUILDERS[algorithm_name](kwargs, parameters)


def sampler_kwargs(algorithm_name: str, settings: dict[str, str]) -> dict[str, Any]:
    """Katib's algorithmSettings as keyword arguments of the Optuna sampler."""
    schema = _SETTINGS[algorithm_name]
    kwargs: dict[str, Any] = {}
    for name, text in settings.items():
        if name not in schema:
            raise UserError(
                f"unknown setting {name!r} for algorithm {algorithm_name!r};"
                f" expected one of: {', '.join(schema) or 'none'}"
            )
        keyword, convert = schema[name]
        try:
            value = convert(text)
        except ValueError as error:
            raise UserError(f"setting {name}={text!r} of algorithm {algorithm_name!r}: {error}") from None
        if keyword is not None:
            kwargs[keyword] = value
    return kwargs


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, minus its habit of stopping ``study.optimize`` when the grid is done.

    The local backend drives Optuna with ask/tell, where ``Study.stop`` raises;
    it decides itself when the grid is exhausted (Katib's suggestion end).
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def _grid(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    return _AskTellGridSampler(grid_search_space(parameters), **kwargs)


def _random(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    return optuna.samplers.RandomSampler(**kwargs)


def _tpe(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    # constant_liar: with parallel trials, running ones count as poor results so that parallel
    # suggestions spread out (hyperopt gets the same effect from its trials in flight).
    return optuna.samplers.TPESampler(constant_liar=True, **{**HYPEROPT_TPE_DEFAULTS, **kwargs})


def _multivariate_tpe(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    return optuna.samplers.TPESampler(constant_liar=True, multivariate=True, **kwargs)


def _cmaes(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    numeric = [p for p in parameters if parameter_type(p) in (INT, DOUBLE)]
    if len(numeric) < 2:
        # Katib's validation: CMA-ES needs a search space of two or more numeric dimensions.
        raise UserError("algorithm 'cmaes' needs two or more int/double parameters")
    return optuna.samplers.CmaEsSampler(**kwargs)


def _sobol(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    return optuna.samplers.QMCSampler(qmc_type="sobol", **kwargs)


def _bayesian_optimization(kwargs: dict[str, Any], parameters: tuple[dict[str, Any], ...]) -> BaseSampler:
    return optuna.samplers.GPSampler(**kwargs)


_BUILDERS: dict[str, Callable[[dict[str, Any], tuple[dict[str, Any], ...]], BaseSampler]] = {
    "grid": _grid,
    "random": _random,
    "tpe": _tpe,
    "multivariate-tpe": _multivariate_tpe,
    "cmaes": _cmaes,
    "sobol": _sobol,
    "bayesianoptimization": _bayesian_optimization,
}


def missing_packages(algorithm_name: str) -> tuple[str, ...]:
    """The optional packages ``algorithm_name`` needs that are not installed."""
    return tuple(p for p in _NEEDS.get(algorithm_name, ()) if importlib.util.find_spec(p) is None)


def _require_packages(algorithm_name: str) -> None:
    missing = missing_packages(algorithm_name)
    extras = sorted({_EXTRAS[p] for p in missing if p in _EXTRAS})
    if extras:
        raise UserError(
            f"algorithm {algorithm_name!r} needs the optional extra {', '.join(extras)!s}"
            f" ({', '.join(p for p in missing if p in _EXTRAS)}), which is not installed:"
            f" .venv/bin/uv pip install -e '.[{','.join(extras)}]'"
        )
    if missing:
        raise UserError(
            f"algorithm {algorithm_name!r} needs the Python package(s) {', '.join(missing)},"
            f" which are not installed (pip install {' '.join(missing)})"
        )
