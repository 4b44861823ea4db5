"""Transfer learning (Question 3): a keras.applications base, frozen then fine-tuned.

:func:`run_transfer` is the step: it trains the study's model (see
``components.transfer_models``) on an image folder or a dataset artifact
(``components.transfer_data``), 10 epochs with the base frozen, then
fine-tuning from one layer on, and writes to its output folder::

    frozen.keras    the model after phase 1
    model.keras     the model after fine-tuning
    curves.png      training/validation accuracy and loss of both phases, boundary marked
    history.json    per-epoch metrics of each phase
    source/         (weights "source" only) the pretrained base and how it was made
    checkpoint/     the last finished epoch, to resume from
    metrics.json    written last: the mark of a finished run

Weights: ``imagenet`` (the Keras download; the only case that downloads),
a path or gs:// URI of a weights file (air-gapped clusters), ``none``, or
``source``: pretrain the base here on a source task (Fashion-MNIST classes
0-4 of a dataset artifact, :func:`pretrain_on_source`) and transfer from that,
which is how the offline smoke profile shows real transfer.

Run it as ``study transfer {run,pretrain,image-folder} ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.core import storage
from components.core.argtypes import optional_float, optional_int
from components.core.errors import TrialDiverged, UserError
from components.transfer_data import CACHE_MODES, SOURCE_CLASSES, TARGET_CLASSES

METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"
SOURCE_DIR = "source"
SOURCE_WEIGHTS = "base.weights.h5"
SOURCE_RECORD = "source.json"
PHASES = ("frozen", "fine_tune")
SWITCHES = ("auto", "on", "off")
METRIC_NAMES = ("accuracy", "loss", "val_accuracy", "val_loss")
# Settings a resumed run may change: more fine-tuning epochs, another cache.
RESUMABLE_CHANGES = ("fine_tune_epochs", "cache")

Log = Callable[[str], None]


# ---------------------------------------------------------------------- settings

@dataclass
class TransferSettings:
    base: str = "mobilenet_v2"
    weights: str = "none"  # imagenet | none | source | PATH | gs://URI of a weights file
    input_size: int = 224
    alpha: float | None = None  # MobileNet width multiplier; None: the base's default
    flip: str = "horizontal"
    rotation: float = 0.1
    zoom: float = 0.0
    dropout: float = 0.4
    frozen_epochs: int = 10
    fine_tune_epochs: int = 10
    fine_tune_from: int | str | None = None  # layer index or name in the base; None: the base's default
    frozen_learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    batch_size: int = 32
    seed: int = 1
    # How an image folder is split (a dataset artifact keeps its own splits).
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 42
    classes: tuple[int, ...] | None = None  # a dataset artifact's classes to use; None: all
    cache: str = "memory"  # memory | disk | none
    mixed_precision: str = "auto"  # on a GPU
    xla: str = "auto"  # on a GPU; XLA compiles slowly on a CPU
    # weights "source": the pretraining task.
    source_classes: tuple[int, ...] = SOURCE_CLASSES
    source_images: int | None = None  # training images drawn for pretraining; None: all
    source_epochs: int = 3
    source_learning_rate: float = 1e-3

    def checked(self) -> TransferSettings:
        """A normalized copy; one clear line for the first bad value."""
        from components.transfer_bases import Augmentation, base_spec, check_alpha, check_input_size

        spec = base_spec(self.base)
        check_input_size(spec, self.input_size)
        check_alpha(spec, self.alpha)
        Augmentation(self.flip, self.rotation, self.zoom).check()
        for name in ("frozen_epochs", "batch_size", "source_epochs"):
            _positive_int(name, getattr(self, name))
        _positive_int("fine_tune_epochs", self.fine_tune_epochs, allow_zero=True)
        if self.source_images is not None:
            _positive_int("source_images", self.source_images)
        for name in ("frozen_learning_rate", "fine_tune_learning_rate", "source_learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise UserError(f"{name}={value}: expected a positive number")
        if not (isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0):
            raise UserError(f"dropout={self.dropout}: expected a rate from 0 to below 1")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 < value < 1.0):
                raise UserError(f"{name}={value}: expected a fraction between 0 and 1")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UserError(f"val_fraction={self.val_fraction} + test_fraction={self.test_fraction}: "
                            "leaves no training images")
        for name, allowed in (("cache", CACHE_MODES), ("mixed_precision", SWITCHES), ("xla", SWITCHES)):
            if getattr(self, name) not in allowed:
                raise UserError(f"{name}={getattr(self, name)!r}: expected one of {', '.join(allowed)}")
        weights = str(self.weights).strip()
        if not weights:
            raise UserError("weights='': expected imagenet, none, source, or a weights file path or gs:// URI")
        if weights.lower() in ("imagenet", "none", "source"):
            weights = weights.lower()
        elif not weights.endswith((".weights.h5", ".h5")):
            raise UserError(f"weights {weights!r}: expected imagenet, none, source, or a .weights.h5/.h5 file "
                            "(path or gs:// URI)")
        fine_tune_from = self.fine_tune_from
        if isinstance(fine_tune_from, str) and fine_tune_from.strip().lstrip("-").isdigit():
            fine_tune_from = int(fine_tune_from)
        return dataclasses.replace(
            self, base=spec.name, weights=weights, fine_tune_from=fine_tune_from,
            classes=None if self.classes is None else tuple(int(c) for c in self.classes),
            source_classes=tuple(int(c) for c in self.source_classes))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("classes", "source_classes"):
            d[key] = None if d[key] is None else list(d[key])
        return d


def _positive_int(name: str, value, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UserError(f"{name}={value}: expected a {'non-negative' if allow_zero else 'positive'} integer")


_SETTING_NAMES = {f.name for f in dataclasses.fields(TransferSettings)}
_PROFILE_ONLY = ("bases", "source", "target")


def settings_from_profile(section: Mapping, base: str) -> TransferSettings:
    """The ``transfer`` section of a profile, for one base.

    Flat keys are settings; ``source.{classes,images,epochs,learning_rate}`` are
    ``source_*``; ``bases.<base>`` overrides anything for that base; ``target``
    belongs to the data step (:func:`components.transfer_data.write_image_folder`).
    """
    values = {k: v for k, v in section.items() if k not in _PROFILE_ONLY}
    values.update({f"source_{k}": v for k, v in (section.get("source") or {}).items()})
    values.update((section.get("bases") or {}).get(base) or {})
    unknown = sorted(set(values) - _SETTING_NAMES)
    if unknown:
        raise UserError(f"transfer settings {', '.join(unknown)}: unknown "
                        f"(settings: {', '.join(sorted(_SETTING_NAMES))})")
    values["base"] = base
    for key in ("classes", "source_classes"):
        if values.get(key) is not None:
            values[key] = tuple(_whole(c) for c in values[key])
    # KFP passes a dict parameter through protobuf, where every number is a float.
    return TransferSettings(**{k: _whole(v) if k in _INT_SETTINGS else v for k, v in values.items()})


_INT_SETTINGS = {f.name for f in dataclasses.fields(TransferSettings) if "int" in str(f.type)}


def _whole(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


# ----------------------------------------------------------------------- devices

def gpu_available() -> bool:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return False


def _switch(mode: str, gpu: bool) -> bool:
    return mode == "on" or (mode == "auto" and gpu)


def _jit_compile(mode: str, gpu: bool):
    """Keras' own choice (XLA where it can) on a GPU; off on a CPU, where compiling costs more than it saves."""
    return "auto" if _switch(mode, gpu) else False


@contextlib.contextmanager
def precision(mode: str, gpu: bool) -> Iterator[bool]:
    """Mixed float16 while building and training on a GPU (``auto``); the global policy is restored."""
    import keras

    use = _switch(mode, gpu)
    previous = keras.config.dtype_policy()
    if use:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield use
    finally:
        keras.config.set_dtype_policy(previous)


# -------------------------------------------------------------------- training

@dataclass
class _State:
    """What a checkpoint records besides the model."""

    epoch: int = 0  # finished epochs over both phases
    phase: str = "frozen"
    history: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {p: {} for p in PHASES})
    seconds: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PHASES})
    images: dict[str, int] = field(default_factory=lambda: {p: 0 for p in PHASES})
    trainable: dict[str, int] = field(default_factory=dict)
    fine_tune_from: dict | None = None
    frozen_result: dict | None = None


def _epoch_callback(phase: str, ws: storage.Workspace, state: _State, settings: TransferSettings,
                    n_train: int, total_epochs: int, log: Log):
    """Per epoch: NaN check, one log line, history, checkpoint."""
    import keras

    class EpochCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.train_end = time.perf_counter(), 0.0

        def on_test_begin(self, logs=None):
            self.train_end = time.perf_counter()  # validation starts: this epoch's training is over

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            loss = logs.get("loss", float("nan"))
            if not math.isfinite(loss):
                raise TrialDiverged(f"{settings.base}: loss is {loss} at epoch {epoch + 1} ({phase} phase): "
                                    "training diverged; lower the learning rate")
            seconds = (self.train_end or time.perf_counter()) - self.start
            state.epoch = epoch + 1
            state.seconds[phase] += seconds
            state.images[phase] += n_train
            for name in METRIC_NAMES:
                if name in logs:
                    state.history[phase].setdefault(name, []).append(logs[name])
            shown = " ".join(f"{k}={logs[k]:.4f}" for k in METRIC_NAMES if k in logs)
            log(f"transfer {settings.base}: epoch {epoch + 1}/{total_epochs} ({phase.replace('_', '-')}) "
                f"{shown} ({n_train / max(seconds, 1e-9):.0f} images/s)")
            _save_checkpoint(self.model, ws, state, settings)

    return EpochCallback()


def _save_checkpoint(model, ws: storage.Workspace, state: _State, settings: TransferSettings) -> None:
    from components.cnn.train import save_model

    folder = ws.path(CHECKPOINT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, folder / "model.keras")  # model first: a state file always describes a whole model
    with storage.atomic_local_path(folder / "state.json") as tmp:
        tmp.write_text(json.dumps({"settings": settings.as_dict(), **dataclasses.asdict(state)}))
    ws.push(f"{CHECKPOINT_DIR}/model.keras", f"{CHECKPOINT_DIR}/state.json")


def _comparable(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in RESUMABLE_CHANGES}


def _load_checkpoint(ws: storage.Workspace, settings: TransferSettings):
    import keras

    state_file = ws.path(CHECKPOINT_DIR, "state.json")
    if not state_file.exists():
        return None, _State()
    record = json.loads(state_file.read_text())
    saved = record.pop("settings")
    if _comparable(saved) != _comparable(settings.as_dict()):
        changed = sorted(k for k in _comparable(saved) if saved[k] != settings.as_dict().get(k))
        raise UserError(f"{ws.uri}: holds a transfer run with other settings ({', '.join(changed)} differ); "
                        "use a new output location")
    return keras.models.load_model(ws.path(CHECKPOINT_DIR, "model.keras")), _State(**record)


def _compile(model, learning_rate: float, jit_compile) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)


def _evaluate(model, stream) -> tuple[float, float]:
    loss, accuracy = model.evaluate(stream, verbose=0)
    return float(loss), float(accuracy)


# --------------------------------------------------------------------- weights

def _resolve_weights(settings: TransferSettings, ws: storage.Workspace, scratch: Path,
                     source_data_uri: str | None, log: Log) -> tuple[str | None, dict]:
    """The ``weights`` argument for the model builder, and a record of where the weights came from."""
    kind = settings.weights
    if kind == "none":
        return None, {"kind": "none", "description": "random initialization (no pretrained weights)"}
    if kind == "imagenet":
        return "imagenet", {"kind": "imagenet", "description": "ImageNet (the Keras download)"}
    if kind == "source":
        record = _source_weights(settings, ws, source_data_uri, log)
        return str(ws.path(SOURCE_DIR, SOURCE_WEIGHTS)), {
            "kind": "source", "description": describe_source(record), "source": record}
    if storage.is_gcs(kind):
        local = storage.download_file(kind, scratch / kind.rsplit("/", 1)[-1])  # the name keeps its suffix
    elif Path(kind).is_file():
        local = Path(kind)
    else:
        raise UserError(f"weights file {kind}: no such file")
    return str(local), {"kind": "file", "description": f"weights file {kind}", "location": kind}


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def describe_source(record: dict) -> str:
    names = ", ".join(record["class_names"])
    labels = record["classes"]
    contiguous = labels == list(range(labels[0], labels[-1] + 1))
    shown = f"{labels[0]}–{labels[-1]}" if contiguous and len(labels) > 2 else ", ".join(map(str, labels))
    return (f"weights pretrained here on Fashion-MNIST classes {shown} "
            f"({names}): {record['train_images']:,} images, {_epochs(record['epochs'])}, "
            f"source validation "
            f"accuracy {100 * record['val_accuracy']:.2f}%")


def _source_weights(settings: TransferSettings, ws: storage.Workspace, source_data_uri: str | None,
                    log: Log) -> dict:
    done = ws.path(SOURCE_DIR, SOURCE_RECORD)
    if done.exists():
        record = json.loads(done.read_text())
        if record.get("settings") != _source_settings(settings):
            raise UserError(f"{ws.uri}: holds source-task weights made with other settings; "
                            "use a new output location")
        log(f"transfer {settings.base}: reusing the source-task weights in {SOURCE_DIR}/")
        return record
    if not source_data_uri:
        raise UserError("weights 'source' needs source data: a dataset artifact of Fashion-MNIST "
                        "(--source-data, the output of study data)")
    record = pretrain_on_source(settings, source_data_uri, str(ws.path(SOURCE_DIR)), log=log)
    ws.push(f"{SOURCE_DIR}/{SOURCE_WEIGHTS}", f"{SOURCE_DIR}/{SOURCE_RECORD}")
    return record


_SOURCE_SETTINGS = ("base", "input_size", "alpha", "dropout", "batch_size", "seed", "mixed_precision",
                    "source_classes", "source_images", "source_epochs", "source_learning_rate")


def _source_settings(settings: TransferSettings) -> dict:
    """The settings that make the source-task weights what they are."""
    return {k: v for k, v in settings.as_dict().items() if k in _SOURCE_SETTINGS}


def pretrain_on_source(settings: TransferSettings, data_uri: str, out_uri: str, log: Log = print) -> dict:
    """Train ``settings.base`` from scratch on a source task; save the base's weights.

    The source task is ``settings.source_classes`` of a dataset artifact (by
    default Fashion-MNIST classes 0-4). Writes ``base.weights.h5`` (the base
    alone, loadable with ``--weights``) and ``source.json``, last.
    """
    import keras

    from components.transfer_data import source_splits
    from components.transfer_models import NO_AUGMENTATION, base_of, build_transfer_model

    settings = settings.checked()
    storage.check_writable(out_uri)
    splits = source_splits(data_uri, classes=settings.source_classes, input_size=settings.input_size,
                           batch_size=settings.batch_size, seed=settings.seed, train_images=settings.source_images)
    gpu = gpu_available()
    started = time.perf_counter()
    with precision(settings.mixed_precision, gpu):
        keras.utils.set_random_seed(settings.seed)
        model = build_transfer_model(settings.base, len(splits.class_names), input_size=settings.input_size,
                                     alpha=settings.alpha, weights=None, augmentation=NO_AUGMENTATION,
                                     dropout=settings.dropout, seed=settings.seed, base_inference=False)
        base = base_of(model)
        for layer in base.layers:
            # Brief pretraining: the moving statistics must settle within a few hundred steps,
            # since the target task uses them (batch norm stays in inference mode there).
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
        _compile(model, settings.source_learning_rate, _jit_compile(settings.xla, gpu))
        log(f"transfer {settings.base}: pretraining on the source task, {splits.describe()}")
        history = model.fit(splits.train, validation_data=splits.val, epochs=settings.source_epochs, verbose=0)
    val_accuracy = float(history.history["val_accuracy"][-1])
    record = {
        "base": settings.base, "data": data_uri, "classes": list(settings.source_classes),
        "class_names": splits.class_names, "train_images": splits.counts["train"],
        "val_images": splits.counts["val"], "epochs": settings.source_epochs, "input_size": settings.input_size,
        "alpha": settings.alpha, "learning_rate": settings.source_learning_rate,
        "val_accuracy": val_accuracy, "accuracy": float(history.history["accuracy"][-1]),
        "seconds": time.perf_counter() - started, "settings": _source_settings(settings),
    }
    with tempfile.TemporaryDirectory(prefix="study-source-") as tmp:
        local = Path(tmp, SOURCE_WEIGHTS)
        base.save_weights(str(local))
        storage.upload_file(local, storage.join(out_uri, SOURCE_WEIGHTS))
    storage.write_text(storage.join(out_uri, SOURCE_RECORD), json.dumps(record, indent=2))
    log(f"transfer {settings.base}: source task done, val_accuracy={val_accuracy:.4f} -> "
        f"{storage.join(out_uri, SOURCE_WEIGHTS)}")
    keras.backend.clear_session()
    return record


# ------------------------------------------------------------------------ run

def run_transfer(settings: TransferSettings, data_uri: str, output_uri: str, source_data_uri: str | None = None,
                 log: Log = print) -> dict:
    """Both phases for one base (or resume them); return what ``metrics.json`` holds."""
    settings = settings.checked()
    ws = storage.Workspace(output_uri)
    ws.pull()
    if ws.path(METRICS_FILE).exists():
        metrics = json.loads(ws.path(METRICS_FILE).read_text())
        if (_comparable(metrics["settings"]) == _comparable(settings.as_dict())
                and metrics["settings"]["fine_tune_epochs"] >= settings.fine_tune_epochs):
            log(f"transfer {settings.base}: {output_uri} already finished")
            return metrics
    with tempfile.TemporaryDirectory(prefix="study-transfer-") as tmp:
        scratch = Path(tmp)
        splits = _open_data(settings, data_uri, scratch)
        log(f"transfer {settings.base}: {splits.describe()}")
        weights, weights_record = _resolve_weights(settings, ws, scratch, source_data_uri, log)
        metrics = _train_both_phases(settings, splits, weights, weights_record, ws, log)
    metrics["data"] = {"kind": splits.kind, "location": data_uri, "layout": splits.layout,
                       "classes": splits.class_names, "counts": splits.counts}
    ws.path("history.json").write_text(json.dumps(metrics["history"], indent=2))
    plot_transfer_curves(metrics["history"], ws.path("curves.png"),
                         title=f"{metrics['constructor']} ({settings.input_size}x{settings.input_size}), "
                               f"weights: {weights_record['kind']}")
    ws.push("model.keras", "frozen.keras", "history.json", "curves.png")
    storage.write_text(storage.join(output_uri, METRICS_FILE), json.dumps(metrics, indent=2))
    if ws.remote:  # keep the local mirror complete too
        ws.path(METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _open_data(settings: TransferSettings, data_uri: str, scratch: Path):
    from components.transfer_data import load_splits

    return load_splits(data_uri, input_size=settings.input_size, batch_size=settings.batch_size,
                       seed=settings.seed, workdir=scratch, val_fraction=settings.val_fraction,
                       test_fraction=settings.test_fraction, split_seed=settings.split_seed,
                       classes=settings.classes, cache=settings.cache)


def _train_both_phases(settings: TransferSettings, splits, weights: str | None, weights_record: dict,
                       ws: storage.Workspace, log: Log) -> dict:
    import keras

    from components import transfer_models as tm
    from components.cnn.models import param_counts
    from components.cnn.train import save_model

    spec = tm.base_spec(settings.base)
    gpu = gpu_available()
    jit_compile = _jit_compile(settings.xla, gpu)
    frozen_epochs, total = settings.frozen_epochs, settings.frozen_epochs + settings.fine_tune_epochs
    n_train = splits.counts["train"]
    with precision(settings.mixed_precision, gpu) as mixed:
        keras.utils.set_random_seed(settings.seed)
        model, state = _load_checkpoint(ws, settings)
        if model is None:
            model = tm.build_transfer_model(settings.base, len(splits.class_names), input_size=settings.input_size,
                                            alpha=settings.alpha, weights=weights,
                                            augmentation=_augmentation(settings), dropout=settings.dropout,
                                            seed=settings.seed)
            tm.freeze_base(model)
            tm.fine_tune_index(tm.base_of(model), settings.fine_tune_from, spec)  # a bad layer fails now
            state.trainable["frozen"] = tm.trainable_count(model)
            _compile(model, settings.frozen_learning_rate, jit_compile)
            log(f"transfer {settings.base}: starting from {weights_record['description']}; "
                f"{state.trainable['frozen']:,} of {model.count_params():,} parameters trainable with the base frozen")
        else:
            log(f"transfer {settings.base}: resuming after epoch {state.epoch} of {total} ({state.phase} phase)")

        if state.epoch < frozen_epochs:  # phase 1: the head learns, the base is frozen
            model.fit(splits.train, validation_data=splits.val, epochs=frozen_epochs, initial_epoch=state.epoch,
                      verbose=0, callbacks=[_epoch_callback("frozen", ws, state, settings, n_train, total, log)])
        if state.frozen_result is None:
            test_loss, test_accuracy = _evaluate(model, splits.test)
            state.frozen_result = {"val_accuracy": state.history["frozen"]["val_accuracy"][-1],
                                   "test_accuracy": test_accuracy, "test_loss": test_loss}
            save_model(model, ws.path("frozen.keras"))
            ws.push("frozen.keras")
            _save_checkpoint(model, ws, state, settings)

        if settings.fine_tune_epochs:  # phase 2: unfreeze from one layer on, a smaller learning rate
            if state.phase != "fine_tune":
                index = tm.fine_tune_index(tm.base_of(model), settings.fine_tune_from, spec)
                tm.unfreeze_from(model, index)
                state.phase = "fine_tune"
                state.fine_tune_from = {"index": index, "layer": tm.base_of(model).layers[index].name}
                state.trainable["fine_tune"] = tm.trainable_count(model)
                _compile(model, settings.fine_tune_learning_rate, jit_compile)
                log(f"transfer {settings.base}: fine-tuning from layer {index} ({state.fine_tune_from['layer']}) "
                    f"of {len(tm.base_of(model).layers)}: {state.trainable['fine_tune']:,} parameters trainable")
            if state.epoch < total:
                model.fit(splits.train, validation_data=splits.val, epochs=total, initial_epoch=state.epoch,
                          verbose=0,
                          callbacks=[_epoch_callback("fine_tune", ws, state, settings, n_train, total, log)])
        test_loss, test_accuracy = _evaluate(model, splits.test)
        save_model(model, ws.path("model.keras"))

    fine_tune_history = state.history["fine_tune"]
    return {
        "base": settings.base,
        "constructor": spec.constructor,
        "settings": settings.as_dict(),
        "weights": weights_record,
        "input_shape": [settings.input_size, settings.input_size, 3],
        "val_accuracy_frozen": state.frozen_result["val_accuracy"],
        "val_accuracy_finetuned": fine_tune_history["val_accuracy"][-1] if fine_tune_history else None,
        "test_accuracy_frozen": state.frozen_result["test_accuracy"],
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "history": state.history,
        "params": {**param_counts(model), "trainable_frozen": state.trainable.get("frozen"),
                   "trainable_fine_tune": state.trainable.get("fine_tune")},
        "fine_tune_from": state.fine_tune_from,
        "train_seconds": state.seconds,
        "train_images_per_second": {p: state.images[p] / state.seconds[p] if state.seconds[p] else None
                                    for p in PHASES},
        "mixed_precision": mixed,
        "jit_compile": jit_compile,
        "device": "GPU" if gpu else "CPU",
        "keras_backend": keras.backend.backend(),
    }


def _augmentation(settings: TransferSettings):
    from components.transfer_bases import Augmentation

    return Augmentation(settings.flip, settings.rotation, settings.zoom)


# ------------------------------------------------------------------- figures

def plot_transfer_curves(history: Mapping[str, Mapping[str, list[float]]], path: Path, title: str = "") -> None:
    """Accuracy and loss per epoch over both phases, training beside validation, the boundary marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frozen = history.get("frozen", {})
    fine = history.get("fine_tune", {})
    boundary = len(frozen.get("loss", []))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for name, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = list(frozen.get(name, [])) + list(fine.get(name, []))
            if values:
                label = ("training" if name == metric else "validation") + f" {metric}"
                ax.plot(range(1, len(values) + 1), values, style, markersize=3, label=label)
        if fine.get("loss"):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1.5)
            ax.text(boundary + 0.5, 0.02, " fine-tuning starts", transform=ax.get_xaxis_transform(),
                    color="grey", fontsize=8, va="bottom")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with storage.atomic_local_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# -------------------------------------------------------------------- report

def transfer_section(runs: Mapping[str, str]):
    """Question 3 for the report: one row per base beside the study's figures, one figure per base.

    ``runs``: base name -> run output folder (local or gs://).
    """
    from components.core.settings import STUDY_RESULTS
    from components.report.document import Section, pct

    table = [["base", "input", "weights", "validation accuracy before fine-tuning",
              "validation accuracy after fine-tuning", "test accuracy", "study: before", "study: after"]]
    notes, figures = [], {}
    for base, uri in runs.items():
        m = json.loads(storage.read_text(storage.join(uri, METRICS_FILE)))
        study = STUDY_RESULTS.get(f"transfer_{base}", {})
        size = m["input_shape"][0]
        alpha = m["settings"].get("alpha")
        table.append([m["constructor"] + (f" (α {alpha:g})" if alpha is not None else ""), f"{size}×{size}",
                      m["weights"]["kind"], pct(m["val_accuracy_frozen"]), pct(m["val_accuracy_finetuned"]),
                      pct(m["test_accuracy"]), pct(study.get("val_accuracy_frozen")),
                      pct(study.get("val_accuracy_finetuned"))])
        s = m["settings"]
        ft = m.get("fine_tune_from") or {}
        fine_tuning = (f"then {_epochs(s['fine_tune_epochs'])} of fine-tuning from layer {ft['index']} ({ft['layer']}; "
                       f"{m['params']['trainable_fine_tune']:,} trainable, learning rate "
                       f"{s['fine_tune_learning_rate']:g})" if ft else "no fine-tuning")
        notes.append(f"**{m['constructor']}** started from {m['weights']['description']}. "
                     f"{_epochs(s['frozen_epochs'])} with the base frozen ({m['params']['trainable_frozen']:,} "
                     f"trainable parameters, learning rate {s['frozen_learning_rate']:g}), {fine_tuning}; "
                     f"test accuracy {pct(m['test_accuracy_frozen'])} before fine-tuning. "
                     f"{m['device']}, mixed precision {'on' if m['mixed_precision'] else 'off'}.")
        png = storage.join(uri, "curves.png")
        if storage.exists(png):
            figures[f"transfer_{base}_curves.png"] = storage.read_bytes(png)
    data = json.loads(storage.read_text(storage.join(next(iter(runs.values())), METRICS_FILE)))["data"] if runs else {}
    intro = ""
    if data:
        c = data["counts"]
        n = len(data["classes"])
        intro = (f"Target task: {data['kind']} with {n} classes ({', '.join(data['classes'])}; chance "
                 f"{pct(1 / n)}), {c['train']:,} training, {c['val']:,} validation and {c['test']:,} test images. "
                 "The study fine-tuned ImageNet weights on its own dataset; its figures stand beside ours for "
                 "shape, not as a like-for-like score.")
    return Section("Question 3: transfer learning", "\n\n".join([intro, *notes]).strip(), table, figures)


# ----------------------------------------------------------------------- CLI

def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 5,6,7,8,9") from None




def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    from components.transfer_bases import BASES  # no Keras: the study CLI builds every parser at start-up

    d = TransferSettings()
    p.add_argument("--base", required=True, help=f"one of {', '.join(BASES)}")
    p.add_argument("--input-size", type=int, default=d.input_size,
                   help="image side in pixels (at least 32 for MobileNetV2, 75 for InceptionV3)")
    p.add_argument("--alpha", type=optional_float, default=d.alpha, help="MobileNetV2 width multiplier")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout rate before the softmax head")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per training step")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of the training")
    p.add_argument("--mixed-precision", choices=SWITCHES, default=d.mixed_precision, help="auto: on a GPU")
    p.add_argument("--xla", choices=SWITCHES, default=d.xla, help="auto: on a GPU")
    p.add_argument("--source-classes", type=_int_list, default=d.source_classes,
                   help="Fashion-MNIST classes of the pretraining task, comma-separated")
    p.add_argument("--source-images", type=optional_int, default=d.source_images,
                   help="training images drawn for pretraining (default: all)")
    p.add_argument("--source-epochs", type=int, default=d.source_epochs, help="pretraining epochs")
    p.add_argument("--source-learning-rate", type=float, default=d.source_learning_rate,
                   help="pretraining learning rate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``transfer`` subcommands: run, pretrain, image-folder."""
    d = TransferSettings()
    sub = parser.add_subparsers(dest="transfer_command", required=True)

    p = sub.add_parser("run", help="frozen base, then fine-tuning, for one base")
    p.add_argument("--data", required=True, help="image folder (one sub-folder per class; local or gs://) "
                   "or a dataset artifact of study data")
    p.add_argument("--out", required=True, help="run folder or gs:// URI; resumes if it has a checkpoint")
    p.add_argument("--weights", required=True, help="imagenet (downloads), none, source (pretrain here on "
                   "--source-data), or a .weights.h5/.h5 file path or gs:// URI")
    p.add_argument("--source-data", default=None, help="dataset artifact for --weights source")
    _add_model_arguments(p)
    p.add_argument("--flip", default=d.flip, help="horizontal, vertical, horizontal_and_vertical or none")
    p.add_argument("--rotation", type=float, default=d.rotation, help="fraction of a full turn; 0: off")
    p.add_argument("--zoom", type=float, default=d.zoom, help="fraction of the side; 0: off")
    p.add_argument("--frozen-epochs", type=int, default=d.frozen_epochs, help="epochs with the base frozen")
    p.add_argument("--fine-tune-epochs", type=int, default=d.fine_tune_epochs,
                   help="epochs with the top of the base unfrozen")
    p.add_argument("--fine-tune-from", default=None, help="first base layer to unfreeze: index or name "
                   "(default: 100 for MobileNetV2, 249 for InceptionV3)")
    p.add_argument("--frozen-learning-rate", type=float, default=d.frozen_learning_rate,
                   help="learning rate of the frozen phase")
    p.add_argument("--fine-tune-learning-rate", type=float, default=d.fine_tune_learning_rate,
                   help="learning rate of the fine-tuning phase")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of an image folder for validation")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help="share of an image folder for test")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="random seed of the image folder's split")
    p.add_argument("--classes", type=_int_list, default=None, help="a dataset artifact's classes to use")
    p.add_argument("--cache", choices=CACHE_MODES, default=d.cache, help="where decoded images are kept while training")
    p.set_defaults(transfer_func=_cmd_run)

    p = sub.add_parser("pretrain", help="train a base from scratch on a source task; save its weights")
    p.add_argument("--data", required=True, help="dataset artifact of study data")
    p.add_argument("--out", required=True, help="folder for base.weights.h5 and source.json")
    _add_model_arguments(p)
    p.set_defaults(transfer_func=_cmd_pretrain)

    p = sub.add_parser("image-folder", help="write Fashion-MNIST classes as an image folder of PNG files")
    p.add_argument("--data", required=True, help="dataset artifact of study data")
    p.add_argument("--out", required=True, help="image folder to write (local or gs://), one sub-folder per class")
    p.add_argument("--classes", type=_int_list, default=TARGET_CLASSES, help="Fashion-MNIST classes, comma-separated")
    p.add_argument("--images-per-class", type=optional_int, default=None, help="default: all")
    p.add_argument("--seed", type=int, default=42, help="random seed of the images drawn")
    p.set_defaults(transfer_func=_cmd_image_folder)


def _settings_from_args(args, **extra) -> TransferSettings:
    names = _SETTING_NAMES & set(vars(args))
    return TransferSettings(**{n: getattr(args, n) for n in names}, **extra)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cmd_run(args) -> None:
    metrics = run_transfer(_settings_from_args(args), args.data, args.out, source_data_uri=args.source_data,
                           log=_log)
    after = metrics["val_accuracy_finetuned"]
    print(f"transfer {metrics['base']}: val_accuracy_frozen={metrics['val_accuracy_frozen']:.4f} "
          f"val_accuracy_finetuned={'—' if after is None else f'{after:.4f}'} "
          f"test_accuracy={metrics['test_accuracy']:.4f} -> {args.out}")


def _cmd_pretrain(args) -> None:
    record = pretrain_on_source(_settings_from_args(args), args.data, args.out, log=_log)
    print(f"pretrain {record['base']}: val_accuracy={record['val_accuracy']:.4f} -> "
          f"{storage.join(args.out, SOURCE_WEIGHTS)}")


def _cmd_image_folder(args) -> None:
    from components.transfer_data import write_image_folder

    record = write_image_folder(args.data, args.out, classes=args.classes,
                                images_per_class=args.images_per_class, seed=args.seed)
    print(f"image folder: {record['images']:,} images in {len(record['class_counts'])} classes -> {args.out}")


def run_from_args(args) -> int:
    args.transfer_func(args)
    return 0
