"""The resumable training loop: the CNN trial and both transfer phases run on it.

A :class:`TrainingRun` owns one output location::

    checkpoint/model.keras   the model after the last finished epoch (written first)
    checkpoint/state.json    the run's identity and its :class:`Progress` (written second)
    history.json             per-epoch metrics, written when the run completes
    metrics.json             written last: the mark of a finished run

Started again on the same location, a run resumes after the last finished epoch,
or, finished, hands back its metrics. A location holding a run of other settings
(its :class:`RunIdentity`) is refused with one line, so the old run's results are
never reported as the new one's. Each epoch is checked for a diverged loss
(:class:`TrialDiverged`: exit 3), timed without its validation, recorded, handed
to the caller's hook (log lines, Katib's StdOut line, TensorBoard) and checkpointed.

Keras restores the weights and the optimizer from ``model.keras`` but not the
random streams: the seed-generator states (Dropout masks, augmentation draws)
would restart from the seed in a new process and replay epoch 1's draws. The
checkpoint keeps them (:attr:`Progress.rng_states`).

Keras 3 only, so a run trains under TensorFlow, JAX or PyTorch alike.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from components.core import storage
from components.core.errors import TrialDiverged, UserError
from components.core.faults import fault_point

CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
# The layout of state.json; a checkpoint of another layout (the two loops this one replaced) is not resumed.
CHECKPOINT_FORMAT = 2


def save_model(model: keras.Model, path: Path) -> None:
    """Save a .keras file atomically (Keras insists on the extension, so the temp file has it)."""
    with storage.atomic_local_path(path, suffix=".tmp.keras") as tmp:
        model.save(tmp)
        fault_point("trial.model-written-to-temporary")


def compile_built(model: keras.Model, **compile_args: Any) -> None:
    """``model.compile``, then build what the first training step would: the optimizer, loss and metrics.

    For a model of one input trained on integer labels (the CNN, the transfer models). Under
    TensorFlow, Keras builds them while ``tf.function`` traces the first step, and TensorFlow
    traces a step that created variables a second time. Built here, from symbolic inputs, the
    step is traced once: MobileNetV2's first batch (64x64, alpha 0.35, all layers trainable)
    took 10.3 s instead of 23.5 on 2 CPU cores. Every variable starts where Keras would
    start it, so training is unchanged.
    """
    model.compile(**compile_args)
    labels = keras.KerasTensor((None,), "int32")
    # Keras' own build (Trainer._symbolic_build), as fit runs it under a distribution strategy.
    model._symbolic_build(data_batch=(model.inputs[0], labels))


# ---------------------------------------------------------------------- identity

@dataclass(frozen=True)
class RunIdentity:
    """What makes a run this run: a location holding another is refused, not resumed.

    ``settings`` are kept under ``settings_key`` in ``state.json`` and ``metrics.json``;
    ``may_change`` names the settings a resumed run may change (more epochs, another cache).
    ``data`` is the input's identity, where the run records one. ``epochs``: the planned
    epochs, where a record of more epochs is another run; None: no such limit.
    """

    what: str  # "trial", "transfer run": how messages name it
    settings_key: str
    settings: Mapping[str, Any]
    may_change: tuple[str, ...] = ()
    data: str | None = None
    epochs: int | None = None

    def record(self) -> dict:
        return {self.settings_key: dict(self.settings), **({"data": self.data} if self.data is not None else {})}

    def differences(self, saved: Mapping[str, Any]) -> str:
        """``optimizer Adam (asked: Nadam), filters ...``: the settings, those that may change aside, that differ."""
        wanted = self.settings
        names = sorted((set(saved) | set(wanted)) - set(self.may_change))
        return ", ".join(f"{n} {saved.get(n)} (asked: {wanted.get(n)})" for n in names
                         if saved.get(n) != wanted.get(n))

    def check(self, uri: str, record: Mapping[str, Any], epochs_done: int, *, finished: bool) -> None:
        """``record`` (a checkpoint's state or a finished run's metrics) is of this run, or a UserError."""
        what = f"a finished {self.what}" if finished else f"a {self.what} checkpoint"
        differ = self.differences(record.get(self.settings_key) or {})
        saved_data = record.get("data")
        if self.data is not None and saved_data is not None and saved_data != self.data:
            differ = ", ".join(filter(None, [differ, "data (another dataset artifact)"]))
        if differ:
            raise UserError(f"{uri}: holds {what} with other settings: {differ}; use a new output location")
        if self.epochs is not None and epochs_done > self.epochs:
            raise UserError(f"{uri}: holds {what} of {epochs_done} epochs, more than epochs={self.epochs}; "
                            "use a new output location")


# ---------------------------------------------------------------------- progress

@dataclass
class Progress:
    """What a checkpoint records besides the model and the run's identity."""

    epoch: int = 0  # finished epochs, all phases together
    phase: str = ""  # the phase of the last epochs run (or about to run)
    history: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # phase -> metric -> per epoch
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> training time, validation left out
    images: dict[str, int] = field(default_factory=dict)  # phase -> training images seen
    epoch_seconds: list[float] = field(default_factory=list)  # the training part of each epoch, in order
    rng_states: list[list[int]] = field(default_factory=list)  # the model's seed generators, model order
    notes: dict[str, Any] = field(default_factory=dict)  # what the caller keeps with a checkpoint

    @classmethod
    def start(cls, phases: Sequence[str]) -> Progress:
        return cls(phase=phases[0], history={p: {} for p in phases}, seconds={p: 0.0 for p in phases},
                   images={p: 0 for p in phases})


@dataclass(frozen=True)
class EpochEnd:
    """One finished epoch, as the caller's hook sees it."""

    phase: str
    epoch: int  # 1-based, over all phases
    logs: dict[str, float]
    seconds: float  # the training part
    images: int

    @property
    def images_per_second(self) -> float:
        return self.images / max(self.seconds, 1e-9)


EpochHook = Callable[[EpochEnd], None]
# (loss, epoch (1-based), phase) -> the one line that says the run diverged and what to try
DivergenceMessage = Callable[[float, int, str], str]


def seed_states(model: keras.Model) -> list:
    """The model's seed-generator state variables (Dropout's masks, augmentation), in a stable order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def restore_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    variables = seed_states(model)
    if len(states) != len(variables):
        raise UserError(f"checkpoint holds {len(states)} random-generator states, the model has "
                        f"{len(variables)}: the checkpoint is from another model; use a new output location")
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


# ----------------------------------------------------------------------- the run

class TrainingRun:
    """One resumable training run in one output location (local, gs:// or s3://).

    ``metric_names``: the Keras logs recorded per epoch, in this order. ``push_with_checkpoint``:
    workspace paths uploaded with each checkpoint (a TensorBoard folder). ``fault_name``: the
    fault point passed after each epoch's checkpoint (``components.core.faults``).
    """

    def __init__(self, output_uri: str, identity: RunIdentity, *, metric_names: Sequence[str],
                 phases: Sequence[str] = ("train",), divergence: DivergenceMessage,
                 push_with_checkpoint: Sequence[str] = (), fault_name: str | None = None):
        self.ws = storage.Workspace(output_uri)
        self.ws.pull()
        self.identity = identity
        self.metric_names = tuple(metric_names)
        self.phases = tuple(phases)
        self.divergence = divergence
        self.push_with_checkpoint = tuple(push_with_checkpoint)
        self.fault_name = fault_name
        self.progress = Progress.start(self.phases)

    @property
    def uri(self) -> str:
        return self.ws.uri

    def finished(self) -> dict | None:
        """The metrics of this run if it finished here before; None if it did not."""
        path = self.ws.path(METRICS_FILE)
        if not path.exists():
            return None
        metrics = json.loads(path.read_text())
        self.identity.check(self.uri, metrics, int(metrics.get("epochs") or 0), finished=True)
        return metrics

    def resume(self) -> keras.Model | None:
        """The checkpointed model, its progress and random streams restored; None: nothing to resume."""
        state_file = self.ws.path(CHECKPOINT_DIR, "state.json")
        if not state_file.exists():
            return None
        record = json.loads(state_file.read_text())
        if record.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{self.uri}: holds a {self.identity.what} checkpoint of another format (written by "
                            "another version of this code); use a new output location")
        self.identity.check(self.uri, record, int(record.get("epoch") or 0), finished=False)
        names = {f.name for f in dataclasses.fields(Progress)}
        self.progress = Progress(**{k: v for k, v in record.items() if k in names})
        model = keras.models.load_model(self.ws.path(CHECKPOINT_DIR, "model.keras"))
        if self.progress.rng_states:
            restore_seed_states(model, self.progress.rng_states)
        return model

    def train(self, model: keras.Model, phase: str, until: int, images_per_epoch: int,
              fit: Callable[[int, int, list], object], on_epoch: EpochHook) -> None:
        """Epochs ``progress.epoch`` .. ``until`` of ``phase``, each recorded and checkpointed.

        ``fit(first, until, callbacks)`` runs them (``model.fit(..., initial_epoch=first,
        epochs=until, callbacks=callbacks)``, in one call or one per epoch).
        """
        if self.progress.epoch >= until:
            return
        self.progress.phase = phase
        fit(self.progress.epoch, until, [_EpochRecorder(self, phase, images_per_epoch, on_epoch)])

    def checkpoint(self, model: keras.Model) -> None:
        folder = self.ws.path(CHECKPOINT_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        self.progress.rng_states = [[int(v) for v in np.asarray(s)] for s in seed_states(model)]
        # Model first, state second: a state file always describes a complete model file.
        save_model(model, folder / "model.keras")
        with storage.atomic_local_path(folder / "state.json") as tmp:
            record = {"format": CHECKPOINT_FORMAT, **self.identity.record(), **dataclasses.asdict(self.progress)}
            tmp.write_text(json.dumps(record))
        self.ws.push(f"{CHECKPOINT_DIR}/model.keras", f"{CHECKPOINT_DIR}/state.json", *self.push_with_checkpoint)

    def complete(self, metrics: Mapping[str, Any], history: Mapping[str, Any], *push: str) -> None:
        """Write history.json, upload ``push`` (workspace paths) and it, then metrics.json, last."""
        self.ws.path(HISTORY_FILE).write_text(json.dumps(history, indent=2))
        self.ws.push(*push, HISTORY_FILE)
        text = json.dumps(metrics, indent=2)
        storage.write_text(storage.join(self.uri, METRICS_FILE), text)
        if self.ws.remote:  # keep the local mirror complete too (a later resume reads it)
            self.ws.path(METRICS_FILE).write_text(text)


class _EpochRecorder(keras.callbacks.Callback):
    """Per epoch: NaN check, timing, the record, the caller's hook, checkpoint, fault point."""

    def __init__(self, run: TrainingRun, phase: str, images_per_epoch: int, on_epoch: EpochHook):
        super().__init__()
        self.run, self.phase, self.images, self.on_epoch = run, phase, images_per_epoch, on_epoch
        self._epoch_start = self._train_end = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_end = 0.0

    def on_test_begin(self, logs=None):
        # Validation starts: the training part of this epoch is over.
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        loss = logs.get("loss", float("nan"))
        if not math.isfinite(loss):
            raise TrialDiverged(self.run.divergence(loss, epoch + 1, self.phase))
        seconds = (self._train_end or time.perf_counter()) - self._epoch_start
        progress = self.run.progress
        progress.epoch = epoch + 1
        progress.seconds[self.phase] = progress.seconds.get(self.phase, 0.0) + seconds
        progress.images[self.phase] = progress.images.get(self.phase, 0) + self.images
        progress.epoch_seconds.append(seconds)
        history = progress.history.setdefault(self.phase, {})
        for name in self.run.metric_names:
            if name in logs:
                history.setdefault(name, []).append(logs[name])
        self.on_epoch(EpochEnd(self.phase, epoch + 1, logs, seconds, self.images))
        self.run.checkpoint(self.model)
        if self.run.fault_name:
            fault_point(self.run.fault_name, epoch + 1)
