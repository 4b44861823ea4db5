"""The hyperband suggestion service's checks: a budget on a named parameter, and enough parallel trials.

pkg/suggestion/v1beta1/hyperband/service.py at v0.19.0 (ValidateAlgorithmSettings).
"""

from __future__ import annotations

from katib.backends.local.katib_api import HYPERBAND_DEFAULT_ETA, hyperband_parallel_needed
from katib.validate.defaults import parallel_trial_count
from katib.validate.values import Problems, is_int, parameter_list, show, to_float

# The service's eta when the setting is absent or not positive (stated once, in katib_api).
DEFAULT_ETA = HYPERBAND_DEFAULT_ETA


def check_hyperband(spec: dict, settings: dict[str, str]) -> Problems:
    """Hyperband needs a budget (r_l) on a named parameter and enough parallel trials per bracket."""
    path = "spec.algorithm.algorithmSettings"
    problems: Problems = []
    resource = settings.get("resource_name")
    r_l_text = settings.get("r_l")
    if resource is None or r_l_text is None:
        missing = [n for n in ("r_l", "resource_name") if n not in settings]
        return [f"{path}: hyperband needs {' and '.join(missing)}; expected settings r_l and resource_name"]
    names = [p.get("name") for p in parameter_list(spec) if isinstance(p, dict)]
    if resource not in names:
        problems.append(f"{path} (resource_name): {show(resource)} is not in spec.parameters; expected one of {names}")
    r_l = to_float(r_l_text)
    if r_l is None or r_l <= 0:
        return problems + [f"{path} (r_l): {show(r_l_text)}; expected a number > 0"]
    eta_text = settings.get("eta")
    eta = DEFAULT_ETA
    if eta_text is not None:
        eta_value = to_float(eta_text)
        if eta_value is None:
            return problems + [f"{path} (eta): {show(eta_text)}; expected an integer >= 2"]
        # Katib truncates eta to an int and falls back to 3 when it is not positive.
        eta = int(eta_value) if int(eta_value) > 0 else DEFAULT_ETA
        if eta == 1:
            return problems + [f"{path} (eta): {show(eta_text)}; expected an integer >= 2"]
    # Same float arithmetic as Katib's validator, so the bound matches what it enforces.
    needed = hyperband_parallel_needed(r_l, eta)
    parallel = parallel_trial_count(spec)
    if is_int(parallel) and parallel < needed:
        problems.append(
            f"spec.parallelTrialCount: {parallel}; hyperband with r_l={r_l_text}, eta={eta} "
            f"expected at least {needed}"
        )
    return problems
