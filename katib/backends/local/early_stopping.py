"""Katib's median-stop early stopping (``pkg/earlystopping/v1beta1/medianstop``).

How Katib does it, and so how this does it:

* When a trial is created, the early-stopping service hands it one rule:
  "stop when the objective is worse than V, from step ``start_step`` on".
  V exists only once ``min_trials_required`` trials have succeeded; a trial
  created before that runs with no rule at all.
* V is computed from succeeded trials only: each one's first ``start_step``
  objective reports are averaged, and V is the mean of those averages
  (Katib calls it the median, but its code takes the mean).
* The metrics collector counts every report of the objective as one step and
  compares the best value so far (max when maximizing, min when minimizing)
  with V: a trial is stopped at the first step >= start_step where that best
  is strictly worse than V.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from components.core.errors import UserError

MEDIANSTOP = "medianstop"
DEFAULT_MIN_TRIALS_REQUIRED = 3
DEFAULT_START_STEP = 4


@dataclass(frozen=True)
class MedianStopSettings:
    min_trials_required: int = DEFAULT_MIN_TRIALS_REQUIRED
    start_step: int = DEFAULT_START_STEP


def read_early_stopping(name: str | None, settings: dict[str, str]) -> MedianStopSettings | None:
    """The Experiment's early-stopping settings, or None when it has none."""
    if not name:
        return None
    if name != MEDIANSTOP:
        raise UserError(f"early stopping algorithm {name!r} is not supported; expected {MEDIANSTOP!r}")
    values = {"min_trials_required": DEFAULT_MIN_TRIALS_REQUIRED, "start_step": DEFAULT_START_STEP}
    for key, text in settings.items():
        if key not in values:
            raise UserError(
                f"unknown setting {key!r} for early stopping {MEDIANSTOP!r}; expected min_trials_required or start_step"
            )
        values[key] = _setting_int(key, text)
    if values["min_trials_required"] < 1:
        raise UserError("medianstop min_trials_required must be greater than zero")
    if values["start_step"] < 1:
        raise UserError("medianstop start_step must be one or more")
    return MedianStopSettings(**values)


def median_stop_value(succeeded_histories: Sequence[Sequence[float]], settings: MedianStopSettings) -> float | None:
    """Katib's stopping value V from the succeeded trials' objective histories (None: too few)."""
    averages = [
        sum(history[: settings.start_step]) / len(history[: settings.start_step])
        for history in succeeded_histories
        if history
    ]
    if len(averages) < settings.min_trials_required:
        return None
    return sum(averages) / len(averages)


@dataclass
class StoppingRule:
    """One trial's rule: stop once its best objective is worse than ``value``."""

    value: float
    start_step: int
    maximize: bool
    step: int = 0
    best: float | None = field(default=None)

    def should_stop(self, objective: float) -> bool:
        """Count one step with this objective report; True when the trial must stop."""
        self.step += 1
        if self.best is None or (objective > self.best if self.maximize else objective < self.best):
            self.best = objective
        if self.step < self.start_step:
            return False
        return self.best < self.value if self.maximize else self.best > self.value

    def describe(self, objective_metric: str) -> str:
        comparison = "below" if self.maximize else "above"
        return (
            f"best {objective_metric} {self.best:g} at step {self.step} is {comparison}"
            f" the median-stop value {self.value:g}"
        )


def _setting_int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"medianstop setting {key}={text!r} is not a whole number") from None
