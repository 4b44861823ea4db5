"""The optuna suggestion service's checks: tpe, multivariate-tpe, random and grid.

pkg/suggestion/v1beta1/optuna/service.py at v0.19.0 (OptimizerConfiguration
.validate_algorithm_spec): any other setting name fails the Experiment, and a
grid must have at least maxTrialCount points (_validate_grid_setting). Katib's
default katib-config serves grid and multivariate-tpe from here.
"""

from __future__ import annotations

from typing import Any

from katib.backends.local import katib_api
from katib.backends.local.katib_api import DOUBLE
from katib.validate.algorithm_settings import RANDOM_STATE, SettingCheck, int_at_least
from katib.validate.values import Problems, is_int, parameter_list

TPE: dict[str, SettingCheck] = {
    "random_state": RANDOM_STATE,
    "n_startup_trials": int_at_least(0),
    "n_ei_candidates": int_at_least(0),
}
MULTIVARIATE_TPE = TPE  # one validator (_validate_tpe_setting) serves both
RANDOM: dict[str, SettingCheck] = {"random_state": RANDOM_STATE}
GRID: dict[str, SettingCheck] = {"random_state": RANDOM_STATE}


def grid_size(experiment: Any) -> int | None:
    """Number of points in the grid over spec.parameters, or None if it has no finite grid.

    Katib's count (katib.backends.local.katib_api.grid_size): categorical/discrete give one
    point per list entry; int gives min..max by step (default 1); double needs a
    step and counts min..max inclusive, in decimal so 0..0.3 by 0.1 is 4 points.
    """
    spec = experiment.get("spec") if isinstance(experiment, dict) else None
    parameters = spec.get("parameters") if isinstance(spec, dict) else None
    if not isinstance(parameters, list) or not parameters:
        return None
    return katib_api.grid_size(parameters) or None  # an empty grid is no grid


def check_grid(spec: dict, parameters_valid: bool) -> Problems:
    """Grid needs a finite grid, and Katib's grid service refuses more trials than points."""
    algorithm = spec.get("algorithm")
    if not isinstance(algorithm, dict) or algorithm.get("algorithmName") != "grid":
        return []
    problems: Problems = []
    for i, parameter in enumerate(parameter_list(spec)):
        if not isinstance(parameter, dict) or parameter.get("parameterType") != DOUBLE:
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
    if is_int(max_trials) and max_trials > size:
        problems.append(f"spec.maxTrialCount: {max_trials}; grid has only {size} points, expected <= {size}")
    return problems
