"""What the study adds to KerasTuner's tuner: a mixin for the chosen AutoKeras tuner, and atomic state files.

The mixin (:class:`StudyTuner`) saves the search's state as it begins, prints a line per trial,
records which worker ran each trial, uploads a finished trial (through ``after_trial``), refuses a
search space in which ``pretrained`` is free, and stops a worker once its trials are over.
:func:`atomic_tuner_state` patches KerasTuner's ``save_json`` while a search runs; its docstring says why.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from components.core import storage
from components.core.faults import fault_point
from components.core.settings import OBJECTIVE_METRIC
from components.nas.layout import TRIAL_RUN_FILE


class WorkerDone(Exception):
    """A worker's trials are over. AutoKeras' search would go on to fetch and save the best
    model, asking the chief again after it may have shut down; a worker stops here instead."""


class StudyTuner:
    """Mixed into the chosen AutoKeras tuner: progress lines, per-trial records, resumable storage."""

    study_log: Callable[[str], None] = print
    study_after_trial: Callable[[str], None] = staticmethod(lambda trial_id: None)
    study_pretrained: bool = False

    def on_search_begin(self):
        super().on_search_begin()
        # The guard behind "no step downloads weights": every `pretrained` choice is fixed.
        space = self.oracle.get_space()
        for hp in space.space:
            if hp.name.endswith("/pretrained") and (type(hp).__name__ != "Fixed" or hp.value != self.study_pretrained):
                raise RuntimeError(f"hyperparameter {hp.name} is not fixed to {self.study_pretrained}")
        if not self._is_worker():
            # KerasTuner reloads a search only where this tuner's state file exists, and first writes it
            # after the first trial: a search killed as that trial ended started over. Saved now (the
            # oracle's state, then the tuner's), a search killed at any later instant resumes.
            self.save()

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        fault_point("nas.trial-begun")  # the oracle has saved the trial as ongoing
        self._study_started = time.time()
        values = ", ".join(f"{'/'.join(k.split('/')[-2:])}={v}" for k, v in trial.hyperparameters.values.items())
        self.study_log(f"nas: trial {trial.trial_id} started on {self.tuner_id} ({values})")

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle records the trial and the tuner saves its state
        seconds = time.time() - self._study_started
        record = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id, "status": str(trial.status),
                  "started": self._study_started, "seconds": seconds}
        with storage.atomic_local_path(Path(self.get_trial_dir(trial.trial_id), TRIAL_RUN_FILE)) as tmp:
            tmp.write_text(json.dumps(record))
        self.study_after_trial(trial.trial_id)
        metrics = self.oracle.get_trial(trial.trial_id).metrics
        best = (f"{OBJECTIVE_METRIC}={metrics.get_best_value(OBJECTIVE_METRIC):.4f}"
                if metrics.exists(OBJECTIVE_METRIC) else "no objective")
        self.study_log(f"nas: trial {trial.trial_id} finished on {self.tuner_id}: {trial.status}, "
                       f"{best}, {seconds:.1f} s")

    def on_search_end(self):
        super().on_search_end()
        if self._is_worker():
            raise WorkerDone()


def tuner_class(name: str, log: Callable[[str], None], after_trial: Callable[[str], None], pretrained: bool):
    """AutoKeras' tuner ``name`` (greedy, bayesian, ...) with :class:`StudyTuner` mixed in."""
    from autokeras.auto_model import TUNER_CLASSES

    base = TUNER_CLASSES[name]
    return type(f"Study{base.__name__}", (StudyTuner, base),
                {"study_log": staticmethod(log), "study_after_trial": staticmethod(after_trial),
                 "study_pretrained": pretrained})


@contextlib.contextmanager
def atomic_tuner_state():
    """Make KerasTuner write its state files (oracle.json, <tuner id>.json, trial.json) atomically.

    It writes them in place, so a search killed mid-write (preemption, a kill between trials)
    leaves an empty oracle.json that the next start cannot reload. Each file is written beside
    its target and renamed over it instead, as every artifact here is.

    A patch, because KerasTuner offers no hook for how it writes: every state file goes through
    ``keras_tuner.src.utils.save_json``, looked up on the module at each call (``Stateful.save``
    for the oracle, tuner and trial states, and ``Tuner.run_trial``'s build config; KerasTuner
    1.4), so replacing that one function while KerasTuner runs covers them all, and the original
    is put back after.
    """
    from keras_tuner.src import utils as tuner_utils

    original = tuner_utils.save_json

    def save_json(path, obj):
        text = json.dumps(obj)
        with storage.atomic_local_path(path) as tmp:
            tmp.write_text(text)
        fault_point(f"nas.wrote:{Path(path).parent.name}/{Path(path).name}")  # e.g. nas.wrote:trial_1/trial.json
        return text

    tuner_utils.save_json = save_json
    try:
        yield
    finally:
        tuner_utils.save_json = original
