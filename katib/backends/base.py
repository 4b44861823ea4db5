"""What every sweep backend does: run one Experiment to its end and say how it went.

A backend takes a validated Katib v1beta1 Experiment (a dict, as ``kubectl apply`` would
send it) and returns an :class:`Outcome`: Katib's final condition, the best trial's name
and one :class:`TrialRow` per trial, failed ones included. The sweep stage
(:func:`katib.sweep.run_stage`) turns that into the study's summary the same way for
every backend. Implementations: :class:`katib.backends.local_backend.LocalBackend`
(this machine) and :class:`katib.backends.cluster.ClusterBackend` (the Katib controller).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrialRow:
    """One trial as the summary lists it."""

    name: str
    state: str  # Katib's trial state: Succeeded, Failed, EarlyStopped, MetricsUnavailable, Killed, Running, ...
    reason: str  # the reason of the condition that gave the state, e.g. TrialFailed
    assignments: dict[str, str]  # parameterAssignments as {name: value}
    objective: float | None  # by the objective metric's strategy (max val_accuracy); None: no value


@dataclass(frozen=True)
class Outcome:
    """How an Experiment ended, in Katib's terms."""

    experiment: str  # the Experiment's name
    condition: str  # Succeeded or Failed (Katib's ExperimentConditionType)
    reason: str  # e.g. ExperimentMaxTrialsReached, ExperimentGoalReached
    message: str
    best_trial: str | None  # status.currentOptimalTrial.bestTrialName; None before any trial reported
    trials: list[TrialRow] = field(default_factory=list)
    where: str = ""  # where a person looks for more: a run folder, or "experiment <namespace>/<name>"


class SweepBackend(abc.ABC):
    """Runs Experiments somewhere."""

    @abc.abstractmethod
    def run(self, experiment: dict, *, log: Log = print) -> Outcome:
        """Run the (validated) Experiment to its end; raise a UserError when it cannot give an Outcome."""

    def claim(self) -> contextlib.AbstractContextManager:
        """Held while a stage writes its Experiment, runs it and writes its summary (one writer per location).

        Nothing by default: on a cluster the API server refuses a second Experiment of one name.
        """
        return contextlib.nullcontext()
