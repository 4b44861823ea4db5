"""One training run of the hand-written CNN: the command every Katib trial runs.

Each epoch prints one ``name=value`` line that Katib's StdOut metrics
collector parses with its default filter, writes TensorBoard scalars, and
checkpoints to the output. Started again on the same output, the trial
resumes after the last finished epoch (``components.core.training``, the loop
the transfer phases share). ``metrics.json`` is written last: it is the mark
of a finished trial.

A resumed trial records what an uninterrupted one would. The loop keeps the
seed-generator states (Dropout's masks) in the checkpoint; the order
``fit(shuffle=True)`` draws would still restart from the seed in a new
process, so a resumed epoch would replay epoch 1's batches, which the model
has already fitted, and report a training loss far too low. So the trial
draws each epoch's order from ``(seed, epoch)`` itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import keras
import numpy as np

from components.cnn import warm_start as warm
from components.cnn.hparams import OPTIMIZERS, TrialConfig
from components.cnn.models import build_study_cnn, param_counts
from components.core import storage
from components.core.dataset import load_dataset, stratified_subset
from components.core.errors import UserError
from components.core.settings import ADDITIONAL_METRICS, OBJECTIVE_METRIC
from components.core.tblog import SummaryLog
from components.core.training import EpochEnd, Progress, RunIdentity, TrainingRun, compile_built, save_model

METRIC_NAMES = (OBJECTIVE_METRIC, *ADDITIONAL_METRICS)
PHASE = "train"  # the trial's one phase in the shared loop's record


def make_optimizer(name: str, learning_rate: float | None) -> keras.optimizers.Optimizer:
    cls = {o.lower(): getattr(keras.optimizers, o) for o in OPTIMIZERS}[name.lower()]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


def format_metrics_line(epoch: int, logs: dict[str, float]) -> str:
    """``epoch=3 accuracy=0.9102 loss=0.2461 val_accuracy=0.905 val_loss=0.2703``."""
    parts = [f"epoch={epoch}"]
    parts += [f"{name}={logs[name]:.6g}" for name in sorted(logs) if name in METRIC_NAMES]
    return " ".join(parts)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training images' order in epoch ``epoch`` (0-based): the same in any process."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def data_identity(data_uri: str) -> str:
    """The dataset artifact's identity: the sha256 of its completion marker (content, not location)."""
    from components.core.dataset import METADATA

    try:
        return hashlib.sha256(storage.read_bytes(storage.join(data_uri, METADATA))).hexdigest()
    except UserError:
        raise UserError(f"{data_uri}: not a dataset artifact (no {METADATA}; was the data step finished?)") from None


def metrics_lines(metrics: dict) -> list[str]:
    """A finished trial's metrics lines, one per epoch, from its ``metrics.json``."""
    history = metrics["history"]
    return [format_metrics_line(i + 1, {k: v[i] for k, v in history.items()}) for i in range(metrics["epochs"])]


def _replay(metrics: dict) -> None:
    """A finished trial started again prints its lines again, so a collector still sees them."""
    for line in metrics_lines(metrics):
        print(line, flush=True)


def _trial_run(config: TrialConfig, data_id: str, output_uri: str) -> TrainingRun:
    def diverged(loss: float, epoch: int, phase: str) -> str:
        return (f"loss is {loss} at epoch {epoch}: training diverged (optimizer {config.optimizer}, "
                f"learning rate {config.learning_rate or 'default'})")

    # More epochs than were run continue the same trial, so a longer run on the same output is
    # allowed; anything else would report the old trial's results as the new one's.
    identity = RunIdentity("trial", "config", config.as_dict(), may_change=("epochs",), data=data_id,
                           epochs=config.epochs)
    return TrainingRun(output_uri, identity, metric_names=METRIC_NAMES, phases=(PHASE,), divergence=diverged,
                       push_with_checkpoint=("tensorboard",), fault_name="trial.epoch-checkpointed")


def run_trial(config: TrialConfig, data_uri: str, output_uri: str,
              log: Callable[[str], None] = print, warm_start: str | None = None) -> dict:
    """Train (or resume) one trial; return the metrics that ``metrics.json`` holds. ``warm_start``: a
    population-based-training folder (``components.cnn.warm_start``)."""
    config = config.normalized()
    data_id = data_identity(data_uri)
    run = _trial_run(config, data_id, output_uri)
    finished = run.finished()
    if finished is not None and finished["epochs"] == config.epochs:
        log(f"trial: {output_uri} already finished; printing its metrics again")
        _replay(finished)
        return finished

    data = load_dataset(data_uri)
    y_all = np.asarray(data.y["train"])
    # The trial's training images: all, or a stratified subset drawn from the seed alone.
    subset = (stratified_subset(y_all, config.train_images, np.random.default_rng(config.seed))
              if config.train_images else np.arange(len(y_all)))
    y_train = y_all[subset]
    if len(subset) < len(y_all):
        log(f"trial: training on {len(subset):,} of the {len(y_all):,} training images "
            f"(stratified, seed {config.seed})")
    x_val, y_val = data.images("val"), data.y["val"]
    keras.utils.set_random_seed(config.seed)

    start, from_parent = warm.lineage_start(warm_start, config, data_id, output_uri) if warm_start else (0, False)
    model = run.resume()
    if model is None:
        model = build_study_cnn(config.activations, config.filters, input_shape=x_val.shape[1:],
                                num_classes=int(data.metadata["num_classes"]), bn_momentum=config.bn_momentum)
        if from_parent:
            warm.load_parent_weights(model, warm_start)
            log(f"trial: starting from the parent trial's weights in {warm_start} ({start} epochs trained)")
        compile_built(model, optimizer=make_optimizer(config.optimizer, config.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        log(f"trial: resuming after epoch {run.progress.epoch} of {config.epochs}")

    tb = SummaryLog(run.ws.path("tensorboard"))
    if run.progress.epoch == 0:
        tb.hparams(hparams_record(config))

    def report(end: EpochEnd) -> None:
        """The Katib metrics line, a log line, TensorBoard scalars."""
        print(format_metrics_line(end.epoch, end.logs), flush=True)
        log(f"trial: epoch {end.epoch}/{config.epochs} trained in {end.seconds:.1f} s "
            f"({end.images_per_second:.0f} images/s)")
        tb.scalars({k: v for k, v in end.logs.items() if k in METRIC_NAMES}, step=end.epoch)

    def fit(first: int, until: int, callbacks: list) -> None:
        for epoch in range(first, until):
            # One fit call per epoch, in an order of our own (see the module docstring).
            order = epoch_order(config.seed, start + epoch, len(y_train))  # the lineage's epoch
            model.fit(data.images("train", subset[order]), y_train[order], validation_data=(x_val, y_val),
                      epochs=epoch + 1, initial_epoch=epoch, batch_size=config.batch_size, shuffle=False,
                      verbose=0, callbacks=callbacks)

    wall_start = time.perf_counter()
    run.train(model, PHASE, config.epochs, len(y_train), fit, report)
    tb.close()

    metrics = {**_summarize(config, run.progress, model, time.perf_counter() - wall_start), "data": data_id,
               "training_images": len(subset)}
    save_model(model, run.ws.path("model.keras"))
    if warm_start:
        warm.leave_weights(model, warm_start, config, data_id, start, output_uri)
    run.complete(metrics, run.progress.history[PHASE], "model.keras", "tensorboard")
    return metrics


def hparams_record(config: TrialConfig) -> dict:
    """The trial's settings as its TensorBoard HParams record holds them (lists as comma lists)."""
    return {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in config.as_dict().items()}


def _steady_rate(progress: Progress) -> float | None:
    later = progress.epoch_seconds[1:]
    if not later:
        return None
    return progress.images[PHASE] / progress.epoch * len(later) / max(sum(later), 1e-9)


def _summarize(config: TrialConfig, progress: Progress, model: keras.Model, wall_seconds: float) -> dict:
    history = progress.history[PHASE]
    best_epoch = max(range(len(history[OBJECTIVE_METRIC])), key=lambda i: history[OBJECTIVE_METRIC][i])
    return {
        "config": config.as_dict(),
        "epochs": progress.epoch,
        "final": {k: v[-1] for k, v in history.items()},
        "best": {"epoch": best_epoch + 1, **{k: v[best_epoch] for k, v in history.items()}},
        "history": history,
        "params": param_counts(model),
        "train_seconds": progress.seconds[PHASE],
        "wall_seconds_last_attempt": wall_seconds,
        "train_images_per_second": progress.images[PHASE] / max(progress.seconds[PHASE], 1e-9),
        # The first epoch also compiles the step function: the steady rate leaves it out.
        "steady_images_per_second": _steady_rate(progress),
        "keras_backend": keras.backend.backend(),
    }
