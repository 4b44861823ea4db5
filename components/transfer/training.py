"""The transfer step: both phases for one base, on the shared resumable loop.

:func:`run_transfer` trains the study's model (``components.transfer.models``) on
an image folder or a dataset artifact (``components.transfer.data``): epochs with
the base frozen, then fine-tuning from one layer on. Both phases run on
:class:`components.core.training.TrainingRun`, as the CNN trial does, so a run
killed in either phase resumes after its last finished epoch, and one started
again with more fine-tuning epochs continues. Batch norm stays in inference mode
throughout (see ``components.transfer.models``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from components.core.training import EpochEnd, RunIdentity, TrainingRun
from components.transfer.bases import Augmentation, base_spec
from components.transfer.curves import plot_transfer_curves
from components.transfer.devices import gpu_available, jit_compile, precision
from components.transfer.settings import TransferSettings
from components.transfer.weights import resolve_weights

PHASES = ("frozen", "fine_tune")
METRIC_NAMES = ("accuracy", "loss", "val_accuracy", "val_loss")
# Settings a resumed run may change: more fine-tuning epochs, another cache.
RESUMABLE_CHANGES = ("fine_tune_epochs", "cache")

Log = Callable[[str], None]


def _transfer_run(settings: TransferSettings, output_uri: str) -> TrainingRun:
    def diverged(loss: float, epoch: int, phase: str) -> str:
        return (f"{settings.base}: loss is {loss} at epoch {epoch} ({phase} phase): training diverged; "
                "lower the learning rate")

    identity = RunIdentity("transfer run", "settings", settings.as_dict(), may_change=RESUMABLE_CHANGES)
    return TrainingRun(output_uri, identity, metric_names=METRIC_NAMES, phases=PHASES, divergence=diverged,
                       fault_name="transfer.epoch-checkpointed")


def run_transfer(settings: TransferSettings, data_uri: str, output_uri: str, source_data_uri: str | None = None,
                 log: Log = print) -> dict:
    """Both phases for one base (or resume them); return what ``metrics.json`` holds."""
    settings = settings.checked()
    run = _transfer_run(settings, output_uri)
    finished = run.finished()
    if finished is not None and finished["settings"]["fine_tune_epochs"] >= settings.fine_tune_epochs:
        log(f"transfer {settings.base}: {output_uri} already finished")
        return finished
    with tempfile.TemporaryDirectory(prefix="study-transfer-") as tmp:
        scratch = Path(tmp)
        splits = _open_data(settings, data_uri, scratch)
        log(f"transfer {settings.base}: {splits.describe()}")
        weights, weights_record = resolve_weights(settings, run.ws, scratch, source_data_uri, log)
        metrics = _train_both_phases(settings, splits, weights, weights_record, run, log)
    metrics["data"] = {"kind": splits.kind, "location": data_uri, "layout": splits.layout,
                       "classes": splits.class_names, "counts": splits.counts}
    plot_transfer_curves(metrics["history"], run.ws.path("curves.png"),
                         title=f"{metrics['constructor']} ({settings.input_size}x{settings.input_size}), "
                               f"weights: {weights_record['kind']}")
    run.complete(metrics, metrics["history"], "model.keras", "frozen.keras", "curves.png")
    return metrics


def _open_data(settings: TransferSettings, data_uri: str, scratch: Path):
    from components.transfer.data import load_splits

    return load_splits(data_uri, input_size=settings.input_size, batch_size=settings.batch_size,
                       seed=settings.seed, workdir=scratch, val_fraction=settings.val_fraction,
                       test_fraction=settings.test_fraction, split_seed=settings.split_seed,
                       classes=settings.classes, cache=settings.cache)


def _evaluate(model, stream) -> tuple[float, float]:
    loss, accuracy = model.evaluate(stream, verbose=0)
    return float(loss), float(accuracy)


def _train_both_phases(settings: TransferSettings, splits, weights: str | None, weights_record: dict,
                       run: TrainingRun, log: Log) -> dict:
    import keras

    from components.cnn.models import param_counts
    from components.core.training import save_model
    from components.transfer import models as tm

    spec = base_spec(settings.base)
    gpu = gpu_available()
    jit = jit_compile(settings.xla, gpu)
    frozen_epochs, total = settings.frozen_epochs, settings.frozen_epochs + settings.fine_tune_epochs
    n_train = splits.counts["train"]
    with precision(settings.mixed_precision, gpu) as mixed:
        keras.utils.set_random_seed(settings.seed)
        model = run.resume()
        progress = run.progress
        # Kept with each checkpoint: trainable counts, the first unfrozen layer, phase 1's result.
        notes = progress.notes
        if model is None:
            model = tm.build_transfer_model(settings.base, len(splits.class_names), input_size=settings.input_size,
                                            alpha=settings.alpha, weights=weights,
                                            augmentation=Augmentation(settings.flip, settings.rotation, settings.zoom),
                                            dropout=settings.dropout, seed=settings.seed)
            tm.freeze_base(model)
            tm.fine_tune_index(tm.base_of(model), settings.fine_tune_from, spec)  # a bad layer fails now
            notes["trainable"] = {"frozen": tm.trainable_count(model)}
            tm.compile_for_phase(model, settings.frozen_learning_rate, jit)
            log(f"transfer {settings.base}: starting from {weights_record['description']}; "
                f"{notes['trainable']['frozen']:,} of {model.count_params():,} parameters trainable with the base "
                "frozen")
        else:
            log(f"transfer {settings.base}: resuming after epoch {progress.epoch} of {total} "
                f"({progress.phase} phase)")

        def fit(first: int, until: int, callbacks: list) -> None:
            model.fit(splits.train, validation_data=splits.val, epochs=until, initial_epoch=first, verbose=0,
                      callbacks=callbacks)

        def report(end: EpochEnd) -> None:
            shown = " ".join(f"{k}={end.logs[k]:.4f}" for k in METRIC_NAMES if k in end.logs)
            log(f"transfer {settings.base}: epoch {end.epoch}/{total} ({end.phase.replace('_', '-')}) "
                f"{shown} ({end.images_per_second:.0f} images/s)")

        run.train(model, "frozen", frozen_epochs, n_train, fit, report)  # phase 1: the head learns
        if notes.get("frozen_result") is None:
            test_loss, test_accuracy = _evaluate(model, splits.test)
            notes["frozen_result"] = {"val_accuracy": progress.history["frozen"]["val_accuracy"][-1],
                                      "test_accuracy": test_accuracy, "test_loss": test_loss}
            save_model(model, run.ws.path("frozen.keras"))
            run.ws.push("frozen.keras")
            run.checkpoint(model)

        if settings.fine_tune_epochs:  # phase 2: unfreeze from one layer on, a smaller learning rate
            if progress.phase != "fine_tune":
                index = tm.fine_tune_index(tm.base_of(model), settings.fine_tune_from, spec)
                tm.unfreeze_from(model, index)
                progress.phase = "fine_tune"
                notes["fine_tune_from"] = {"index": index, "layer": tm.base_of(model).layers[index].name}
                notes["trainable"]["fine_tune"] = tm.trainable_count(model)
                tm.compile_for_phase(model, settings.fine_tune_learning_rate, jit)
                log(f"transfer {settings.base}: fine-tuning from layer {index} ({notes['fine_tune_from']['layer']}) "
                    f"of {len(tm.base_of(model).layers)}: {notes['trainable']['fine_tune']:,} parameters trainable")
            run.train(model, "fine_tune", total, n_train, fit, report)
        test_loss, test_accuracy = _evaluate(model, splits.test)
        save_model(model, run.ws.path("model.keras"))

    fine_tune_history = progress.history["fine_tune"]
    frozen_result, trainable = notes["frozen_result"], notes["trainable"]
    return {
        "base": settings.base,
        "constructor": spec.constructor,
        "settings": settings.as_dict(),
        "weights": weights_record,
        "input_shape": [settings.input_size, settings.input_size, 3],
        "val_accuracy_frozen": frozen_result["val_accuracy"],
        "val_accuracy_finetuned": fine_tune_history["val_accuracy"][-1] if fine_tune_history else None,
        "test_accuracy_frozen": frozen_result["test_accuracy"],
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "history": progress.history,
        "params": {**param_counts(model), "trainable_frozen": trainable.get("frozen"),
                   "trainable_fine_tune": trainable.get("fine_tune")},
        "fine_tune_from": notes.get("fine_tune_from"),
        "train_seconds": progress.seconds,
        "train_images_per_second": {p: progress.images[p] / progress.seconds[p] if progress.seconds[p] else None
                                    for p in PHASES},
        "mixed_precision": mixed,
        "jit_compile": jit,
        "device": "GPU" if gpu else "CPU",
        "keras_backend": keras.backend.backend(),
    }
