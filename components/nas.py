"""Question 1B: the AutoKeras architecture search (image input → ImageBlock → classification head).

The search is an AutoKeras 3 ``AutoModel`` fed numpy arrays from the dataset
artifact. Its KerasTuner project (oracle state, one folder per trial) lives in
the run's storage, and AutoKeras is always started with ``overwrite=False``:
started again on the same output, a search resumes where it stopped and a
finished trial is never run again.

Outputs, ``nas.json`` written last as the mark of a finished search:

- ``model.keras``        the best model (load it with ``autokeras.CUSTOM_OBJECTS``)
- ``model_summary.txt``  its layers (name, type, output shape, parameters) and the three parameter counts
- ``trials.csv``         every trial: status, validation accuracy, worker, hyperparameters
- ``nas.json``           settings, the trials, the model's layers and parameters, test accuracy,
                         search wall time

Beyond one machine, KerasTuner's distributed mode runs one chief oracle and
workers over gRPC. The same command starts as either, from the variables
KerasTuner reads: ``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``, ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. Workers run trials
and exit when the oracle has no more; the chief hands out trials, then exports
the best model once. All of them must see the same search folder (a shared
volume; ``k8s/base/nas`` mounts one).

``pretrained`` is False unless asked for, so no step downloads ImageNet weights.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.core import storage
from components.core.argtypes import optional_float, optional_int
from components.core.errors import UserError
from components.core.settings import OBJECTIVE_METRIC

BLOCK_TYPES = ("resnet", "xception", "vanilla", "efficient")
TUNERS = ("greedy", "bayesian", "hyperband", "random")
# Inside an ImageBlock, the block that wraps a Keras application and owns the `pretrained`
# hyperparameter. Block names count from 1 in every AutoModel (it clears the Keras session).
_APPLICATION_BLOCKS = {"resnet": "res_net_block_1", "xception": "xception_block_1",
                       "efficient": "efficient_net_block_1"}

MODEL_FILE = "model.keras"
MODEL_SUMMARY_FILE = "model_summary.txt"
TRIALS_FILE = "trials.csv"
RESULT_FILE = "nas.json"  # written last
SEARCH_FOLDER = "search"  # default search location inside the output
PROJECT = "autokeras"  # the KerasTuner project folder inside the search folder
SETTINGS_FILE = "settings.json"  # in the search folder: what a resumed search must match
PROGRESS_FILE = "progress.json"  # in the search folder: wall time of each attempt
TRIAL_RUN_FILE = "run.json"  # in each trial folder: which worker ran it, for how long

# Environment variables of KerasTuner's distributed mode (keras_tuner/src/distribute/utils.py).
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"


# ----------------------------------------------------------------------- settings

@dataclass
class NasConfig:
    block_type: str = "resnet"
    normalize: bool = True
    augment: bool = False
    pretrained: bool = False  # True downloads ImageNet weights: only when asked for
    tuner: str = "greedy"
    max_trials: int = 3
    epochs: int = 10
    batch_size: int = 32  # AutoKeras' default
    seed: int = 1
    train_images: int | None = None  # a stratified subset of the training split; None: all
    val_split: float | None = None  # carve validation from training (stratified); None: the artifact's

    def normalized(self) -> NasConfig:
        """A checked copy with canonical names; raises UserError on bad values."""
        block_type = str(self.block_type).strip().lower()
        if block_type not in BLOCK_TYPES:
            raise UserError(f"block type {self.block_type!r}: expected one of {', '.join(BLOCK_TYPES)}")
        tuner = str(self.tuner).strip().lower()
        if tuner not in TUNERS:
            raise UserError(f"tuner {self.tuner!r}: expected one of {', '.join(TUNERS)}")
        for name in ("max_trials", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name}={value}: expected a positive integer")
        if self.train_images is not None and (not isinstance(self.train_images, int) or self.train_images < 1):
            raise UserError(f"train_images={self.train_images}: expected a positive number of images")
        if self.val_split is not None and not 0.0 < self.val_split < 1.0:
            raise UserError(f"val_split={self.val_split}: expected a number between 0 and 1")
        if self.pretrained and block_type == "vanilla":
            raise UserError("pretrained=True: the vanilla block has no pretrained weights "
                            "(use resnet, xception or efficient)")
        return dataclasses.replace(self, block_type=block_type, tuner=tuner, normalize=bool(self.normalize),
                                   augment=bool(self.augment), pretrained=bool(self.pretrained))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NasConfig:
        """From a profile's ``nas`` section (unknown keys are a user error)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"nas settings: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        # A KFP struct carries every number as a float: 2.0 trials means 2.
        return cls(**{k: int(v) if k in _INT_SETTINGS and isinstance(v, float) and v.is_integer() else v
                      for k, v in values.items()})


_INT_SETTINGS = ("max_trials", "epochs", "batch_size", "seed", "train_images")


# ------------------------------------------------------------ distributed roles

@dataclass(frozen=True)
class Role:
    """Where this process stands in a search: alone, KerasTuner's chief oracle, or a worker."""

    kind: str  # "single", "chief" or "worker"
    tuner_id: str = "tuner0"
    oracle: str = ""  # ip:port of the chief

    @property
    def exports(self) -> bool:
        return self.kind != "worker"


def search_role(environ: dict | None = None) -> Role:
    """The role KerasTuner will take from the environment, checked so that a mistake is one line."""
    env = os.environ if environ is None else environ
    ip, port, tuner_id = env.get(ENV_ORACLE_IP), env.get(ENV_ORACLE_PORT), env.get(ENV_TUNER_ID)
    if not ip:
        return Role("single", tuner_id or "tuner0")
    if not port or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{ENV_ORACLE_PORT}={port or ''}: expected the chief oracle's port (1-65535) "
                        f"when {ENV_ORACLE_IP} is set")
    if not tuner_id:
        raise UserError(f"{ENV_TUNER_ID} is not set: expected 'chief' or a worker id such as 'tuner0' "
                        f"when {ENV_ORACLE_IP} is set")
    # KerasTuner's own test: an id containing "chief" is the chief (distribute/utils.py).
    return Role("chief" if "chief" in tuner_id else "worker", tuner_id, f"{ip}:{port}")


# -------------------------------------------------------------------- the data

def _check_classes(labels: np.ndarray, num_classes: int, what: str, hint: str) -> None:
    missing = sorted(set(range(num_classes)) - set(np.unique(labels).tolist()))
    if missing:
        raise UserError(f"{what} has no images of class(es) {missing} ({len(labels)} images): {hint}")


def search_arrays(data, config: NasConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_val, y_val)`` as AutoKeras wants them: numpy arrays, labels one-hot.

    One-hot labels make the classification head's output column i mean class i, with no
    label encoder in between. Every class must be in both splits, or validation accuracy
    (the search objective) would say nothing about it.
    """
    from components.data import stratified_split, stratified_subset

    num_classes = int(data.metadata["num_classes"])
    rng = np.random.default_rng(config.seed)
    x_train, y_train = data.images("train"), np.asarray(data.y["train"])
    if config.train_images:
        keep = stratified_subset(y_train, config.train_images, rng)
        x_train, y_train = x_train[keep], y_train[keep]
    if config.val_split:
        train_idx, val_idx = stratified_split(y_train, config.val_split, rng)
        x_val, y_val = x_train[val_idx], y_train[val_idx]
        x_train, y_train = x_train[train_idx], y_train[train_idx]
        hint = f"use a larger val_split than {config.val_split} or more training images"
        _check_classes(y_val, num_classes, f"the validation split (val_split={config.val_split})", hint)
        _check_classes(y_train, num_classes, f"the training split left by val_split={config.val_split}", hint)
    else:
        x_val, y_val = data.images("val"), np.asarray(data.y["val"])
        _check_classes(y_val, num_classes, "the dataset's validation split", "rebuild the dataset artifact")
        _check_classes(y_train, num_classes, "the training split",
                       f"use more than train_images={config.train_images}")
    return x_train, _one_hot(y_train, num_classes), x_val, _one_hot(y_val, num_classes)


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[labels.astype(int)]


# ------------------------------------------------------------------- AutoKeras

class _WorkerDone(Exception):
    """A worker's trials are over. AutoKeras' search would go on to fetch and save the best
    model, asking the chief again after it may have shut down; a worker stops here instead."""


class _StudyTuner:
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

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
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
            raise _WorkerDone()


def _tuner_class(name: str, log: Callable[[str], None], after_trial: Callable[[str], None], pretrained: bool):
    from autokeras.auto_model import TUNER_CLASSES

    base = TUNER_CLASSES[name]
    return type(f"Study{base.__name__}", (_StudyTuner, base),
                {"study_log": staticmethod(log), "study_after_trial": staticmethod(after_trial),
                 "study_pretrained": pretrained})


def build_auto_model(config: NasConfig, directory: str | Path, log: Callable[[str], None] = print,
                     after_trial: Callable[[str], None] = lambda trial_id: None):
    """The study's AutoModel: ImageInput → ImageBlock(block_type, normalize, augment) → ClassificationHead."""
    import autokeras as ak
    import keras_tuner

    image = ak.ImageInput()
    block = ak.ImageBlock(block_type=config.block_type, normalize=config.normalize, augment=config.augment)
    head = ak.ClassificationHead()
    output = head(block(image))
    # Fix `pretrained` before the space is explored, so no trial can turn it on (and download).
    hyperparameters = keras_tuner.HyperParameters()
    if config.block_type in _APPLICATION_BLOCKS:
        hyperparameters.Fixed(f"{block.name}/{_APPLICATION_BLOCKS[config.block_type]}/pretrained",
                              config.pretrained)
    extra = {"max_epochs": config.epochs} if config.tuner == "hyperband" else {}
    return ak.AutoModel(
        inputs=image, outputs=output, project_name=PROJECT, directory=str(directory),
        max_trials=config.max_trials, objective=OBJECTIVE_METRIC, seed=config.seed, overwrite=False,
        tuner=_tuner_class(config.tuner, log, after_trial, config.pretrained),
        hyperparameters=hyperparameters, tune_new_entries=True, **extra)


def preview_first_trial(config: NasConfig, data_uri: str, sample: int = 1000):
    """Build (without training) the model the search's first trial trains; return ``(model, values)``.

    Runs AutoKeras' own preparation on a sample of the training images in a throwaway
    folder, asks the oracle for trial 0 and builds it: the parameter counts of a
    ResNet search can be checked in seconds instead of hours.
    """
    from components.core.dataset import load_dataset

    config = config.normalized()
    check_tuner_available(config.tuner)
    data = load_dataset(data_uri)
    x_train, y_train, x_val, y_val = search_arrays(
        data, dataclasses.replace(config, train_images=min(sample, len(data.y["train"])), val_split=None))
    _seed(config.seed)
    with tempfile.TemporaryDirectory(prefix="study-nas-preview-") as tmp:
        auto_model = build_auto_model(config, tmp, log=lambda line: None)
        # The steps of AutoModel.fit and AutoTuner.search that come before the first trial.
        dataset, validation = auto_model._check_and_adapt(x=x_train, y=y_train, validation_data=(x_val, y_val))
        auto_model._analyze_data(dataset)
        auto_model._build_hyper_pipeline()
        tuner = auto_model.tuner
        hp = tuner.oracle.get_space()
        tuner._prepare_model_build(hp, x=dataset[0], y=dataset[1], validation_data=validation)
        tuner._try_build(hp)
        tuner.oracle.update_space(hp)
        tuner.oracle.verbose = 0  # no trial table on stdout
        trial = tuner.oracle.create_trial("preview")
        return tuner._try_build(trial.hyperparameters), dict(trial.hyperparameters.values)


def _seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


# --------------------------------------------------------------------- results

def describe_model(model) -> dict:
    """Layers (name, type, output shape, parameters) and the three parameter counts."""
    from components.cnn.models import param_counts

    layers = []
    for layer in model.layers:
        try:
            shape = str(tuple(None if d is None else int(d) for d in layer.output.shape))
        except (AttributeError, ValueError, TypeError):
            shape = ""
        layers.append({"name": layer.name, "type": type(layer).__name__, "output_shape": shape,
                       "params": int(layer.count_params()) if layer.built else 0})
    return {"name": model.name, "layers": layers, "params": param_counts(model)}


def model_summary_text(description: dict) -> str:
    """A plain-text table of :func:`describe_model` (Keras' own summary is cut to the console's width)."""
    rows = [(f"{layer['name']} ({layer['type']})", layer["output_shape"], f"{layer['params']:,}")
            for layer in description["layers"]]
    header = ("layer (type)", "output shape", "params")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}".rstrip()  # noqa: E731
    params = description["params"]
    return "\n".join([f"model {description['name']}", line(header), "-" * (sum(widths) + 4),
                      *map(line, rows), "-" * (sum(widths) + 4),
                      f"total params: {params['total']:,}", f"trainable params: {params['trainable']:,}",
                      f"non-trainable params: {params['non_trainable']:,}"]) + "\n"


def trial_records(oracle, project_dir: Path) -> list[dict]:
    """Every trial the oracle knows, in id order, with the worker that ran it."""
    records = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        run_file = project_dir / f"trial_{trial_id}" / TRIAL_RUN_FILE
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
        has_objective = trial.metrics.exists(OBJECTIVE_METRIC)
        records.append({
            "trial_id": trial_id,
            "status": str(trial.status),
            OBJECTIVE_METRIC: float(trial.metrics.get_best_value(OBJECTIVE_METRIC)) if has_objective else None,
            "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
            "tuner_id": run.get("tuner_id"),
            "seconds": run.get("seconds"),
            "hyperparameters": {k: _plain(v) for k, v in trial.hyperparameters.values.items()},
        })
    return records


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def trials_csv(records: list[dict]) -> str:
    names = sorted({name for r in records for name in r["hyperparameters"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "status", OBJECTIVE_METRIC, "best_epoch", "worker", "seconds", *names])
    for r in records:
        objective = "" if r[OBJECTIVE_METRIC] is None else f"{r[OBJECTIVE_METRIC]:.4f}"
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        writer.writerow([r["trial_id"], r["status"], objective, r["best_epoch"] or "", r["tuner_id"] or "",
                         seconds, *(r["hyperparameters"].get(n, "") for n in names)])
    return out.getvalue()


def load_best_model(path: str | Path, compile: bool = True):
    """A model the search exported: AutoKeras' custom layers are needed to read it back."""
    import autokeras as ak
    import keras

    with warnings.catch_warnings():
        # The export holds no optimizer slots (the model was never stepped after loading its
        # checkpoint); Keras builds them on load and says so. The weights are all there.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.models.load_model(path, custom_objects=ak.CUSTOM_OBJECTS, compile=compile)


# ------------------------------------------------------------------ the search

def _check_resumable(search_ws: storage.Workspace, config: NasConfig, role: Role) -> None:
    """A search folder holds one search: resuming with other settings would mix two."""
    path = search_ws.path(SETTINGS_FILE)
    mine = {k: v for k, v in config.as_dict().items() if k != "max_trials"}  # more trials may be asked for
    if path.exists():
        saved = {k: v for k, v in json.loads(path.read_text()).items() if k != "max_trials"}
        if saved != mine:
            changed = ", ".join(f"{k}: {saved.get(k)!r} -> {mine.get(k)!r}"
                                for k in sorted(set(saved) | set(mine)) if saved.get(k) != mine.get(k))
            raise UserError(f"{search_ws.uri}: holds a search with other settings ({changed}); "
                            "use a new output or search location")
    elif role.exports:
        with storage.atomic_local_path(path) as tmp:
            tmp.write_text(json.dumps(config.as_dict(), indent=2))
        search_ws.push(SETTINGS_FILE)


def _all_trials_ended(project_dir: Path, max_trials: int) -> bool:
    """Whether the oracle saved in the search folder has no trial left to hand out or wait for."""
    path = project_dir / "oracle.json"
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    ended = set(state.get("end_order", []))
    # The oracle saves before it forgets an ended trial, so "ongoing" may name one that ended.
    return (len(ended) >= max_trials and set(state.get("ongoing_trials", {}).values()) <= ended
            and not state.get("retry_queue"))


def _drop_finished_retries(oracle) -> None:
    """Never run a finished trial again.

    KerasTuner's reload sends every trial that oracle.json lists as ongoing back for a retry. The
    oracle saves a trial's end before it stops listing it as ongoing, and in distributed mode no
    later save follows, so a finished trial can look interrupted. Its own trial.json knows better.
    """
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue
                           if oracle.trials[trial_id].status not in ("COMPLETED", "FAILED")]


@contextlib.contextmanager
def _atomic_tuner_state():
    """Make KerasTuner write its state files (oracle.json, <tuner id>.json, trial.json) atomically.

    It writes them in place, so a search killed mid-write (preemption, a kill between trials)
    leaves an empty oracle.json that the next start cannot reload. Each file is written beside
    its target and renamed over it instead, as every artifact here is.
    """
    from keras_tuner.src import utils as tuner_utils

    original = tuner_utils.save_json

    def save_json(path, obj):
        text = json.dumps(obj)
        with storage.atomic_local_path(path) as tmp:
            tmp.write_text(text)
        return text

    tuner_utils.save_json = save_json
    try:
        yield
    finally:
        tuner_utils.save_json = original


@contextlib.contextmanager
def _environ_without(*names: str):
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class _Progress:
    """Wall time of every attempt at the search, kept in the search folder so resumes add up."""

    def __init__(self, search_ws: storage.Workspace, role: Role):
        self.path = search_ws.path(PROGRESS_FILE)
        self.record = json.loads(self.path.read_text()) if self.path.exists() else {"attempts": []}
        self.started = time.time()
        self.record["attempts"].append({"role": role.kind, "started": self.started, "seconds": 0.0})

    def save(self) -> float:
        self.record["attempts"][-1]["seconds"] = time.time() - self.started
        with storage.atomic_local_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.record, indent=2))
        return self.total

    @property
    def total(self) -> float:
        return sum(a["seconds"] for a in self.record["attempts"])


def _test_accuracy(model, x_test: np.ndarray, y_test: np.ndarray, batch_size: int = 256) -> float:
    predicted = np.argmax(model.predict(x_test, batch_size=batch_size, verbose=0), axis=1)
    return float(np.mean(predicted == y_test))


def check_tuner_available(tuner: str) -> None:
    """KerasTuner's Bayesian optimization needs scikit-learn, an optional extra (keras-tuner[bayesian])."""
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError("tuner 'bayesian' needs scikit-learn (keras-tuner[bayesian]), which is not installed: "
                        "use greedy, random or hyperband, or install scikit-learn")


def run_nas(config: NasConfig, data_uri: str, output_uri: str, search_uri: str | None = None,
            log: Callable[[str], None] = print, role: Role | None = None) -> dict:
    """Search (or resume, or join as chief/worker); export the best model; return what ``nas.json`` holds.

    ``search_uri`` is where the KerasTuner project lives, by default ``<output>/search``. A
    ``gs://`` location is worked on in a local folder and each finished trial is uploaded.
    A worker returns a short record of the trials it ran and exports nothing.
    """
    config = config.normalized()
    check_tuner_available(config.tuner)
    role = role or search_role()
    search_uri = search_uri or storage.join(output_uri, SEARCH_FOLDER)
    if role.kind != "single" and storage.is_gcs(search_uri):
        raise UserError(f"search location {search_uri}: a distributed search needs a folder every worker "
                        "shares (a mounted volume), not gs://")
    if role.exports:
        storage.check_writable(output_uri)
        if storage.exists(storage.join(output_uri, RESULT_FILE)):
            result = json.loads(storage.read_text(storage.join(output_uri, RESULT_FILE)))
            log(f"nas: {output_uri} already finished; best {OBJECTIVE_METRIC}="
                f"{result['best_trial'][OBJECTIVE_METRIC]:.4f}, test accuracy {result['test_accuracy']:.4f}")
            return result

    search_ws = storage.Workspace(search_uri)  # fails early, with one line, where it cannot be written
    from components.core.dataset import load_dataset

    data = load_dataset(data_uri)
    x_train, y_train, x_val, y_val = search_arrays(data, config)
    search_ws.pull()
    _check_resumable(search_ws, config, role)
    project_dir = search_ws.path(PROJECT)
    if role.kind != "single" and _all_trials_ended(project_dir, config.max_trials):
        if role.kind == "worker":
            log(f"nas: worker {role.tuner_id}: every trial of {search_uri} has ended; nothing to do")
            return {"role": role.kind, "tuner_id": role.tuner_id, "trials": []}
        # A chief started again after its workers finished (it stopped before exporting): no worker
        # would ever ask for a trial, and KerasTuner's server would wait for one forever.
        log("nas: every trial has ended; the chief finishes the search without serving the oracle")
        role = Role("single", role.tuner_id)
    progress = _Progress(search_ws, role)

    def after_trial(trial_id: str) -> None:
        if role.kind == "single":
            progress.save()
        # Only what the trial changed: its folder and the tuner's and oracle's state.
        search_ws.push(f"{PROJECT}/trial_{trial_id}", f"{PROJECT}/oracle.json",
                       f"{PROJECT}/{role.tuner_id}.json", PROGRESS_FILE, SETTINGS_FILE)

    import keras

    _seed(config.seed)
    resumed = (project_dir / f"{role.tuner_id}.json").exists()

    @contextlib.contextmanager
    def inside_kerastuner():
        with contextlib.ExitStack() as stack:
            if role.kind == "single":  # KerasTuner reads the variables itself; a chief finishing alone
                stack.enter_context(_environ_without(ENV_ORACLE_IP, ENV_ORACLE_PORT))  # keeps its id
            stack.enter_context(_atomic_tuner_state())
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))  # it prints; stdout is for the outcome
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            yield

    with inside_kerastuner():
        auto_model = build_auto_model(config, search_ws.local, log=log, after_trial=after_trial)
    if role.exports:
        _drop_finished_retries(auto_model.tuner.oracle)
    if role.kind == "worker":  # the chief's oracle knows the trials; a worker asks it for the next one
        where = f"worker {role.tuner_id} of the chief at {role.oracle}"
    else:
        done = sum(t.status in ("COMPLETED", "FAILED") for t in auto_model.tuner.oracle.trials.values())
        who = f"chief at {role.oracle}" if role.kind == "chief" else "single"
        where = f"{who}, {done} of {config.max_trials} trials done"
    log(f"nas: {'resuming' if resumed else 'starting'} ({where}): {config.block_type} block, {config.tuner} "
        f"tuner; {len(x_train):,} training and {len(x_val):,} validation images; search in {search_uri}")
    try:
        with inside_kerastuner():
            auto_model.fit(
                x_train, y_train, validation_data=(x_val, y_val), epochs=config.epochs,
                batch_size=config.batch_size, verbose=0,
                # AutoKeras adds this very callback itself, and then, because it added it, trains
                # the best trial's model a second time from scratch. Passing it keeps the search
                # identical and makes the best model the best trial's own checkpoint.
                callbacks=[keras.callbacks.EarlyStopping(patience=10, min_delta=1e-4)])
    except _WorkerDone:
        ran = sorted(p.parent.name.removeprefix("trial_") for p in project_dir.glob(f"trial_*/{TRIAL_RUN_FILE}")
                     if json.loads(p.read_text()).get("tuner_id") == role.tuner_id)
        log(f"nas: worker {role.tuner_id} done; it ran trial(s) {', '.join(ran) or 'none'}")
        return {"role": role.kind, "tuner_id": role.tuner_id, "trials": ran}
    if role.kind == "chief":
        auto_model.tuner.oracle.save()  # its last save came before it forgot the last trial (see above)
    search_seconds = progress.save()
    search_ws.push(PROJECT, PROGRESS_FILE)
    return _export(auto_model, config, data, role, output_uri, search_uri, project_dir, search_seconds, log)


def _export(auto_model, config: NasConfig, data, role: Role, output_uri: str, search_uri: str,
            project_dir: Path, search_seconds: float, log: Callable[[str], None]) -> dict:
    """Write the best model, its summary, the trial table and ``nas.json`` (last) to the output."""
    records = trial_records(auto_model.tuner.oracle, project_dir)
    completed = [r for r in records if r[OBJECTIVE_METRIC] is not None]
    if not completed:
        raise UserError(f"nas: no trial produced {OBJECTIVE_METRIC}; see the trial folders in {search_uri}")
    best = max(completed, key=lambda r: r[OBJECTIVE_METRIC])
    # AutoKeras saved the best model at the end of the search (the best trial's best epoch); it is
    # exported as saved: loading and saving it again would add the optimizer's slots (3x the size).
    best_model_path = auto_model.tuner.best_model_path
    model = load_best_model(best_model_path, compile=False)
    x_test, y_test = data.images("test"), np.asarray(data.y["test"])
    test_accuracy = _test_accuracy(model, x_test, y_test)
    storage.upload_file(best_model_path, storage.join(output_uri, MODEL_FILE))
    description = describe_model(model)
    storage.write_text(storage.join(output_uri, MODEL_SUMMARY_FILE), model_summary_text(description))
    storage.write_text(storage.join(output_uri, TRIALS_FILE), trials_csv(records))
    import keras

    result = {
        "config": config.as_dict(),
        "role": role.kind,
        "search": search_uri,
        "objective": OBJECTIVE_METRIC,
        "trials": records,
        "best_trial": best,
        "model": description,
        "params": description["params"],
        "test_accuracy": test_accuracy,
        "test_images": int(len(y_test)),
        "search_seconds": search_seconds,
        "keras_backend": keras.backend.backend(),
    }
    storage.write_text(storage.join(output_uri, RESULT_FILE), json.dumps(result, indent=2))
    log(f"nas: best trial {best['trial_id']} {OBJECTIVE_METRIC}={best[OBJECTIVE_METRIC]:.4f}; "
        f"{result['params']['total']:,} parameters; test accuracy {test_accuracy:.4f}; "
        f"search {search_seconds:.0f} s -> {output_uri}")
    return result


# ------------------------------------------------------------------ command line

def _bool(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")
    return value




def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``study nas``."""
    d = NasConfig()
    parser.add_argument("--data", required=True, help="dataset artifact (folder or gs://)")
    parser.add_argument("--output", default=None,
                        help="output folder or gs:// URI (required unless --preview); "
                             "started again on it, the search resumes")
    parser.add_argument("--search-dir", default=None,
                        help="where the KerasTuner project lives (default: OUTPUT/search); a distributed "
                             "search needs a folder the chief and every worker share")
    parser.add_argument("--block-type", default=d.block_type, help=f"one of {', '.join(BLOCK_TYPES)}")
    parser.add_argument("--normalize", type=_bool, default=d.normalize, metavar="true|false",
                        help="ImageBlock's normalization (false: let the search choose)")
    parser.add_argument("--augment", type=_bool, default=d.augment, metavar="true|false",
                        help="ImageBlock's augmentation (false: let the search choose)")
    parser.add_argument("--pretrained", type=_bool, default=d.pretrained, metavar="true|false",
                        help="ImageNet weights (downloads them); default false")
    parser.add_argument("--tuner", default=d.tuner, help=f"one of {', '.join(TUNERS)}")
    parser.add_argument("--max-trials", type=int, default=d.max_trials, help="models the search tries")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs per trial")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="images per training step")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed of the tuner and the training")
    parser.add_argument("--train-images", type=optional_int, default=d.train_images,
                        help="a stratified subset of the training split (default: all)")
    parser.add_argument("--val-split", type=optional_float, default=d.val_split,
                        help="carve this fraction of training images for validation "
                             "(default: the artifact's validation split)")
    parser.add_argument("--preview", action="store_true",
                        help="build the first trial's model, print its summary and parameters, train nothing")


def config_from_args(args: argparse.Namespace) -> NasConfig:
    return NasConfig(block_type=args.block_type, normalize=args.normalize, augment=args.augment,
                     pretrained=args.pretrained, tuner=args.tuner, max_trials=args.max_trials,
                     epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                     train_images=args.train_images, val_split=args.val_split).normalized()


def run_from_args(args: argparse.Namespace) -> int:
    """The ``study nas`` handler: progress on stderr, the outcome's one line on stdout."""
    config = config_from_args(args)  # checked before Keras loads
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.preview:
        model, values = preview_first_trial(config, args.data)
        description = describe_model(model)
        print(model_summary_text(description), end="")
        print(json.dumps({"hyperparameters": values, **description["params"]}))
        return 0
    if not args.output:
        raise UserError("--output: expected an output folder or gs:// URI")
    result = run_nas(config, args.data, args.output, search_uri=args.search_dir, log=log)
    if "test_accuracy" in result:
        print(f"nas: test_accuracy={result['test_accuracy']:.4f} params={result['params']['total']} "
              f"best_{OBJECTIVE_METRIC}={result['best_trial'][OBJECTIVE_METRIC]:.4f}")
    else:
        print(f"nas: worker {result['tuner_id']} ran trials {','.join(result['trials']) or 'none'}")
    return 0
