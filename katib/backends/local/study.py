"""The Optuna study of a local sweep: a journal file in the run folder, asked and told safely.

The journal is written under :class:`katib.backends.local.locks.JournalFlock`, which
dies with its process. Every step that writes it runs inside the runner's
interrupt guard, so Ctrl-C cannot split it; a SIGKILL still can, and what it
leaves is repaired here: a trial created but not yet given all its parameters
gets the rest (as ``ask`` would have given them), and a trial queued for a
rerun but never claimed is claimed by the trial it was queued for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from katib.backends.local import hooks
from katib.backends.local.locks import JournalFlock, break_stale_optuna_lock

STUDY_FILE = "study.journal"


class _HookedJournal(JournalFileBackend):
    """The file backend with a named test instant before each kind of journal write."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if hooks.active():
            for log in logs:
                hooks.reached(f"journal-{_op_name(log.get('op_code'))}")
        super().append_logs(logs)


def _drop_torn_tail(path: Path, log: Callable[[str], None]) -> None:
    """Cut a last entry without its newline (a crash or a full disk mid-write).

    Optuna skips such a line when reading, but its next append would be glued
    onto it, making one undecodable line in the middle, which Optuna refuses
    ever after. Called with the run folder locked.
    """
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
    log(f"dropped the half-written last entry of {path} ({len(data) - keep} bytes), left by a crash")


def _op_name(code: Any) -> str:
    from optuna.storages.journal._storage import JournalOperation  # names only, for the hook points

    try:
        return JournalOperation(code).name.lower()
    except ValueError:
        return str(code)


class SweepStudy:
    """Optuna's side of a sweep: ask for assignments, tell outcomes, repair interrupted steps."""

    def __init__(
        self,
        run_dir: Path,
        name: str,
        maximize: bool,
        sampler: BaseSampler,
        search_space: Mapping[str, BaseDistribution],
        log: Callable[[str], None],
    ) -> None:
        path = run_dir / STUDY_FILE
        break_stale_optuna_lock(path, log)
        _drop_torn_tail(path, log)
        storage = JournalStorage(_HookedJournal(str(path), lock_obj=JournalFlock(path)))
        self.search_space = dict(search_space)
        self.study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize" if maximize else "minimize",
            sampler=sampler,
            load_if_exists=True,
        )

    def trials(self) -> dict[int, FrozenTrial]:
        return {t.number: t for t in self.study.get_trials(deepcopy=False)}

    def ask(self) -> FrozenTrial:
        """A new trial with every parameter of the search space assigned."""
        trial = self.study.ask(fixed_distributions=self.search_space)
        hooks.reached("asked")
        return self._frozen(trial.number)

    def complete(self, trial: FrozenTrial) -> FrozenTrial:
        """A running trial that an interrupted ask left without some parameters, given them now."""
        missing = [name for name in self.search_space if name not in trial.params]
        if not missing:
            return trial
        # Trial() runs the sampler's before_trial again, which keeps an assigned grid point.
        live = optuna.Trial(self.study, trial._trial_id)
        for name in missing:
            _suggest(live, name, self.search_space[name])
        return self._frozen(trial.number)

    def reopen(self, values: dict[str, Any]) -> FrozenTrial:
        """A new running trial with exactly ``values`` (to run again a trial whose Optuna trial is closed).

        Queued and claimed by id, not by Optuna's first-in-first-out pop, so a
        queue entry left by an interrupted reopen is claimed by its own trial.
        """
        waiting = next((t for t in self._waiting() if t.system_attrs.get("fixed_params") == values), None)
        if waiting is None:
            self.study.enqueue_trial(values)
            waiting = next(t for t in self._waiting() if t.system_attrs.get("fixed_params") == values)
        self.study._storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)
        return self.complete(self._frozen(waiting.number))

    def discard_waiting(self) -> None:
        """Close queue entries no trial claimed, so a later ask cannot pop one as a new trial."""
        for trial in self._waiting():
            self.study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)

    def tell(self, number: int, value: float | None = None, state: TrialState | None = None) -> None:
        hooks.reached("tell")
        self.study.tell(number, value, state=state, skip_if_finished=True)

    def _waiting(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))

    def _frozen(self, number: int) -> FrozenTrial:
        return self.study._storage.get_trial(self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number))


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """Optuna's public suggest_* call for one distribution of the search space."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step,
                                   log=distribution.log)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step,
                                 log=distribution.log)
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise TypeError(f"no suggest call for {distribution!r}")
