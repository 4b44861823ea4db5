"""One training run of the hand-written CNN: the command every Katib trial runs.

Each epoch prints one ``name=value`` line that Katib's StdOut metrics
collector parses with its default filter, writes TensorBoard scalars, and
checkpoints to the output. Started again on the same output, the trial
resumes after the last finished epoch. ``metrics.json`` is written last: it
is the mark of a finished trial.

A resumed trial records what an uninterrupted one would. Keras restores the
weights and the optimizer (moments and ``iterations``) from ``model.keras``,
but not the random streams: Dropout's seed-generator state and the order
``fit(shuffle=True)`` draws both restart from the seed in a new process. A
resumed epoch then replays epoch 1's batches with epoch 1's dropout masks,
which the model has already fitted, and reports a training loss that is far
too low. So the trial draws each epoch's order from ``(seed, epoch)`` itself
and keeps the seed-generator states in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from components.cnn.hparams import OPTIMIZERS, TrialConfig
from components.cnn.models import build_study_cnn, param_counts
from components.core import storage
from components.core.dataset import load_dataset
from components.core.errors import TrialDiverged, UserError
from components.core.faults import fault_point
from components.core.settings import ADDITIONAL_METRICS, OBJECTIVE_METRIC
from components.core.tblog import SummaryLog

METRIC_NAMES = (OBJECTIVE_METRIC, *ADDITIONAL_METRICS)
CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "metrics.json"


def make_optimizer(name: str, learning_rate: float | None) -> keras.optimizers.Optimizer:
    cls = {o.lower(): getattr(keras.optimizers, o) for o in OPTIMIZERS}[name.lower()]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


def format_metrics_line(epoch: int, logs: dict[str, float]) -> str:
    """``epoch=3 accuracy=0.9102 loss=0.2461 val_accuracy=0.905 val_loss=0.2703``."""
    parts = [f"epoch={epoch}"]
    parts += [f"{name}={logs[name]:.6g}" for name in sorted(logs) if name in METRIC_NAMES]
    return " ".join(parts)


@dataclass
class _State:
    """What a checkpoint records besides the model: finished epochs and their metrics."""

    epoch: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    images_seen: int = 0
    epoch_seconds: list[float] = field(default_factory=list)  # training part of each epoch
    rng_states: list[list[int]] = field(default_factory=list)  # Dropout seed generators, model order


class _EpochCallback(keras.callbacks.Callback):
    """Per epoch: NaN check, the Katib metrics line, TensorBoard scalars, checkpoint."""

    def __init__(self, ws: storage.Workspace, state: _State, config: TrialConfig, data_id: str,
                 n_train: int, tb: SummaryLog, log: Callable[[str], None]):
        super().__init__()
        self.ws, self.state, self.config, self.data_id = ws, state, config, data_id
        self.n_train, self.tb, self.log = n_train, tb, log
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
            raise TrialDiverged(f"loss is {loss} at epoch {epoch + 1}: training diverged "
                                f"(optimizer {self.config.optimizer}, learning rate "
                                f"{self.config.learning_rate or 'default'})")
        seconds = (self._train_end or time.perf_counter()) - self._epoch_start
        self.state.epoch = epoch + 1
        self.state.train_seconds += seconds
        self.state.epoch_seconds.append(seconds)
        self.state.images_seen += self.n_train
        for name in METRIC_NAMES:
            if name in logs:
                self.state.history.setdefault(name, []).append(logs[name])
        print(format_metrics_line(epoch + 1, logs), flush=True)
        self.log(f"trial: epoch {epoch + 1}/{self.config.epochs} trained in {seconds:.1f} s "
                 f"({self.n_train / max(seconds, 1e-9):.0f} images/s)")
        self.tb.scalars({k: v for k, v in logs.items() if k in METRIC_NAMES}, step=epoch + 1)
        self.state.rng_states = [[int(v) for v in np.asarray(s)] for s in _seed_states(self.model)]
        _save_checkpoint(self.model, self.ws, self.state, self.config, self.data_id)
        fault_point("trial.epoch-checkpointed", epoch + 1)


def _seed_states(model: keras.Model) -> list:
    """The model's seed-generator state variables (Dropout's masks), in a stable order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _restore_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    variables = _seed_states(model)
    if len(states) != len(variables):
        raise UserError(f"checkpoint holds {len(states)} random-generator states, the model has "
                        f"{len(variables)}: the checkpoint is from another model; use a new output location")
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training images' order in epoch ``epoch`` (0-based): the same in any process."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def save_model(model: keras.Model, path: Path) -> None:
    """Save a .keras file atomically (Keras insists on the extension, so the temp file has it)."""
    with storage.atomic_local_path(path, suffix=".tmp.keras") as tmp:
        model.save(tmp)
        fault_point("trial.model-written-to-temporary")


def _save_checkpoint(model: keras.Model, ws: storage.Workspace, state: _State,
                     config: TrialConfig, data_id: str) -> None:
    ckpt = ws.path(CHECKPOINT_DIR)
    ckpt.mkdir(parents=True, exist_ok=True)
    # Model first, state second: a state file always describes a complete model file.
    save_model(model, ckpt / "model.keras")
    record = {"config": config.as_dict(), "data": data_id, **dataclasses.asdict(state)}
    with storage.atomic_local_path(ckpt / "state.json") as tmp:
        tmp.write_text(json.dumps(record))
    ws.push(f"{CHECKPOINT_DIR}/model.keras", f"{CHECKPOINT_DIR}/state.json", "tensorboard")


def _differences(saved: dict, wanted: dict) -> str:
    """``optimizer Adam (asked: Nadam), filters ...``: the settings, epochs aside, that differ."""
    names = sorted((set(saved) | set(wanted)) - {"epochs"})
    return ", ".join(f"{n} {saved.get(n)} (asked: {wanted.get(n)})" for n in names if saved.get(n) != wanted.get(n))


def _check_same_trial(uri: str, what: str, saved: dict, saved_data: str | None, epochs_done: int,
                      config: TrialConfig, data_id: str) -> None:
    """The output holds this trial (same settings and data) and no more epochs than asked for.

    More epochs than were run continue the same trial, so a longer run on the same output is
    allowed; anything else would report the old trial's results as the new one's.
    """
    differ = _differences(saved, config.as_dict())
    if saved_data is not None and saved_data != data_id:
        differ = ", ".join(filter(None, [differ, "data (another dataset artifact)"]))
    if differ:
        raise UserError(f"{uri}: holds {what} with other settings: {differ}; use a new output location")
    if epochs_done > config.epochs:
        raise UserError(f"{uri}: holds {what} of {epochs_done} epochs, more than epochs={config.epochs}; "
                        "use a new output location")


def data_identity(data_uri: str) -> str:
    """The dataset artifact's identity: the sha256 of its completion marker (content, not location)."""
    from components.core.dataset import METADATA

    try:
        return hashlib.sha256(storage.read_bytes(storage.join(data_uri, METADATA))).hexdigest()
    except UserError:
        raise UserError(f"{data_uri}: not a dataset artifact (no {METADATA}; was the data step finished?)") from None


def _load_checkpoint(ws: storage.Workspace, config: TrialConfig,
                     data_id: str) -> tuple[keras.Model | None, _State]:
    state_file = ws.path(CHECKPOINT_DIR, "state.json")
    if not state_file.exists():
        return None, _State()
    record = json.loads(state_file.read_text())
    saved = record.pop("config")
    saved_data = record.pop("data", None)
    _check_same_trial(ws.uri, "a trial checkpoint", saved, saved_data, record["epoch"], config, data_id)
    model = keras.models.load_model(ws.path(CHECKPOINT_DIR, "model.keras"))
    state = _State(**record)
    if state.rng_states:
        _restore_seed_states(model, state.rng_states)
    return model, state


def _replay(metrics: dict) -> None:
    """A finished trial started again prints its lines again, so a collector still sees them."""
    history = metrics["history"]
    for i in range(metrics["epochs"]):
        print(format_metrics_line(i + 1, {k: v[i] for k, v in history.items()}), flush=True)


def run_trial(config: TrialConfig, data_uri: str, output_uri: str,
              log: Callable[[str], None] = print) -> dict:
    """Train (or resume) one trial; return the metrics that ``metrics.json`` holds."""
    config = config.normalized()
    ws = storage.Workspace(output_uri)
    ws.pull()
    data_id = data_identity(data_uri)
    if ws.path(METRICS_FILE).exists():
        metrics = json.loads(ws.path(METRICS_FILE).read_text())
        _check_same_trial(output_uri, "a finished trial", metrics["config"], metrics.get("data"),
                          metrics["epochs"], config, data_id)
        if metrics["epochs"] == config.epochs:
            log(f"trial: {output_uri} already finished; printing its metrics again")
            _replay(metrics)
            return metrics

    data = load_dataset(data_uri)
    y_train = np.asarray(data.y["train"])
    x_val, y_val = data.images("val"), data.y["val"]
    keras.utils.set_random_seed(config.seed)

    model, state = _load_checkpoint(ws, config, data_id)
    if model is None:
        model = build_study_cnn(config.activations, config.filters, input_shape=x_val.shape[1:],
                               num_classes=int(data.metadata["num_classes"]), bn_momentum=config.bn_momentum)
        model.compile(optimizer=make_optimizer(config.optimizer, config.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        log(f"trial: resuming after epoch {state.epoch} of {config.epochs}")

    tb = SummaryLog(ws.path("tensorboard"))
    if state.epoch == 0:
        tb.hparams({k: (",".join(map(str, v)) if isinstance(v, list) else v)
                    for k, v in config.as_dict().items()})
    wall_start = time.perf_counter()
    callback = _EpochCallback(ws, state, config, data_id, len(y_train), tb, log)
    for epoch in range(state.epoch, config.epochs):
        # One fit call per epoch, in an order of our own (see the module docstring).
        order = epoch_order(config.seed, epoch, len(y_train))
        model.fit(data.images("train", order), y_train[order], validation_data=(x_val, y_val),
                  epochs=epoch + 1, initial_epoch=epoch, batch_size=config.batch_size, shuffle=False,
                  verbose=0, callbacks=[callback])
    tb.close()

    metrics = {**_summarize(config, state, model, time.perf_counter() - wall_start), "data": data_id}
    save_model(model, ws.path("model.keras"))
    ws.path("history.json").write_text(json.dumps(state.history, indent=2))
    ws.push("model.keras", "history.json", "tensorboard")
    storage.write_text(storage.join(output_uri, METRICS_FILE), json.dumps(metrics, indent=2))
    if ws.remote:  # keep the local mirror complete too (a later resume reads it)
        ws.path(METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _steady_rate(state: _State) -> float | None:
    later = state.epoch_seconds[1:]
    if not later:
        return None
    return state.images_seen / state.epoch * len(later) / max(sum(later), 1e-9)


def _summarize(config: TrialConfig, state: _State, model: keras.Model, wall_seconds: float) -> dict:
    history = state.history
    best_epoch = max(range(len(history[OBJECTIVE_METRIC])), key=lambda i: history[OBJECTIVE_METRIC][i])
    return {
        "config": config.as_dict(),
        "epochs": state.epoch,
        "final": {k: v[-1] for k, v in history.items()},
        "best": {"epoch": best_epoch + 1, **{k: v[best_epoch] for k, v in history.items()}},
        "history": history,
        "params": param_counts(model),
        "train_seconds": state.train_seconds,
        "wall_seconds_last_attempt": wall_seconds,
        "train_images_per_second": state.images_seen / max(state.train_seconds, 1e-9),
        # The first epoch also compiles the step function: the steady rate leaves it out.
        "steady_images_per_second": _steady_rate(state),
        "keras_backend": keras.backend.backend(),
    }
