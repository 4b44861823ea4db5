"""Checks of an Experiment that the local backend makes before any trial runs (Katib has no such need)."""

from __future__ import annotations

from components.core.errors import UserError
from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.trial_command import build_trial_command


def check_ends(spec: ExperimentSpec, search_ends: bool) -> None:
    """Katib lets a sweep run forever; locally one with nothing to end it is refused.

    ``search_ends``: the search has an end of its own (a grid's last point, hyperband's last bracket).
    """
    if spec.max_trial_count is None and spec.goal is None and not search_ends:
        raise UserError(
            f"the Experiment sets neither spec.maxTrialCount nor spec.objective.goal, so the"
            f" {spec.algorithm_name!r} search would never end; set maxTrialCount"
        )


def check_trial_template(spec: ExperimentSpec) -> None:
    """Fill the template once with stand-in values so a broken one fails before any trial."""
    stand_in = [{"name": name, "value": "0"} for name in spec.parameter_names]
    build_trial_command(spec.trial_template, f"{spec.name}-check", spec.namespace, stand_in)
