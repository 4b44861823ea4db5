"""Algorithms that Katib serves with a stateful service of its own (hyperband, pbt), asked as Katib asks them.

Katib's experiment controller asks the suggestion service for as many trials as
it may create now (experiment_controller.go, ReconcileTrials: ``addCount`` =
min(parallelTrialCount, maxTrialCount - completed) - active), and
suggestionclient.go (SyncAssignments) passes that as ``current_request_number``.
The service keeps its state between requests in the Suggestion's
algorithmSettings (hyperband) or in its own memory (pbt). Locally the state is a
JSON file in the run folder (``suggestion_state.json``), written with each reply,
so a resumed sweep goes on where it stopped.

A service here answers a request with a list of :class:`Suggestion` (possibly
fewer than asked for: Katib v0.19's controller refuses such a reply,
suggestionclient.go "The response contains unexpected trials", and retries
forever (kubeflow/katib#1168); locally the shorter reply is taken), with
``None`` ("nothing until the running trials end"), or with an empty list (the
end: Katib's suggestion end).

A suggestion becomes a trial in two steps, each saved: :meth:`ServiceDriver.creating`
takes it off the queue and notes the trial's name, then the runner writes the
trial's record, then :meth:`ServiceDriver.created` binds it. A sweep killed in
between is reconciled on resume: the noted trial is bound if its record exists,
else its suggestion goes back to the head of the queue; none runs twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.files import read_json, write_json_atomic
from katib.backends.local.records import TrialRecord

STATE_FILE = "suggestion_state.json"
SERVICE_ALGORITHMS = ("hyperband", "pbt")


@dataclass
class Suggestion:
    """One trial a service asks for: Katib's parameter assignments, with what PBT adds (its labels)."""

    assignments: list[dict[str, str]]
    labels: dict[str, str] = field(default_factory=dict)
    # PBT's job id, the trial's name in Katib; locally trials keep the backend's names and are bound to it.
    uid: str = ""


class SuggestionService:
    """The interface of a stateful service (Katib's GetSuggestions, with its state made explicit)."""

    def suggest(self, request: int, records: Sequence[TrialRecord]) -> list[Suggestion] | None:
        raise NotImplementedError

    def stuck(self, records: Sequence[TrialRecord]) -> str | None:
        """Why no request can ever be answered again, with nothing running (None: not stuck)."""
        return None

    def bind(self, suggestion: Suggestion, trial_name: str) -> None:
        """The trial that runs ``suggestion`` is named ``trial_name``."""

    def path_map(self, trial_name: str) -> Callable[[str], str] | None:
        """How paths in the trial's command move (PBT's checkpoint folder); None: they stay."""
        return None

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class ServiceDriver:
    """Asks a service as Katib's controller does, one reply at a time, and keeps its state on disk."""

    def __init__(self, service: SuggestionService, spec: ExperimentSpec, run_dir: Path) -> None:
        self.service = service
        self.spec = spec
        self.path = run_dir / STATE_FILE
        self.queue: list[Suggestion] = []
        self.exhausted = False
        # (suggestion, trial name) between creating() and created(): saved, so a kill there is reconciled.
        self.pending: tuple[Suggestion, str] | None = None
        saved = read_json(self.path) if self.path.exists() else None
        if saved:
            self.service.restore(saved["service"])
            self.queue = [Suggestion(**s) for s in saved.get("queue", [])]
            self.exhausted = bool(saved.get("exhausted"))
            if saved.get("pending"):
                self.pending = (Suggestion(**saved["pending"]["suggestion"]), saved["pending"]["trial"])

    def reconcile(self, recorded: set[str]) -> None:
        """After a kill between creating() and created(): bind the trial if its record was written,
        else give its suggestion back to the queue's head."""
        if self.pending is None:
            return
        suggestion, trial_name = self.pending
        if trial_name in recorded:
            self.created()
        else:
            self.queue.insert(0, suggestion)
            self.pending = None
            self._save()

    def next(self, records: Sequence[TrialRecord], active: int) -> Suggestion | None:
        """The next trial to create now, or None (wait, or the end: see :attr:`exhausted`)."""
        if not self.queue and not self.exhausted:
            request = self.request_count(records, active)
            if request <= 0:
                return None
            reply = self.service.suggest(request, records)
            if reply is None:
                return None
            self.exhausted = not reply
            self.queue = list(reply)
            self._save()
        return self.queue[0] if self.queue else None

    def creating(self, trial_name: str) -> None:
        """The queue's head is about to become trial ``trial_name`` (its record is written next)."""
        self.pending = (self.queue.pop(0), trial_name)
        self._save()

    def created(self) -> None:
        """The pending trial's record is written: bind it."""
        suggestion, trial_name = self.pending
        self.service.bind(suggestion, trial_name)
        self.pending = None
        self._save()

    def request_count(self, records: Sequence[TrialRecord], active: int) -> int:
        """experiment_controller.go, ReconcileTrials: addCount for the current trials."""
        required = self.spec.parallel_trial_count
        if self.spec.max_trial_count is not None:
            completed = sum(1 for r in records if r.finished)
            required = min(required, self.spec.max_trial_count - completed)
        return max(required - active, 0)

    def _save(self) -> None:
        write_json_atomic(self.path, {
            "service": self.service.state(),
            "queue": [_plain(s) for s in self.queue],
            "exhausted": self.exhausted,
            "pending": self.pending and {"suggestion": _plain(self.pending[0]), "trial": self.pending[1]},
        })


def _plain(suggestion: Suggestion) -> dict[str, Any]:
    return {"assignments": suggestion.assignments, "labels": suggestion.labels, "uid": suggestion.uid}
