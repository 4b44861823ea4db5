"""Weights ``source``: pretrain a base here, from scratch, on a source task, and save its weights.

The source task is ``settings.source_classes`` of a dataset artifact (by default
Fashion-MNIST classes 0-4), so the offline profiles show real transfer to classes 5-9.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from components.core import storage
from components.transfer.devices import gpu_available, jit_compile, precision
from components.transfer.settings import TransferSettings

SOURCE_WEIGHTS = "base.weights.h5"
SOURCE_RECORD = "source.json"
# The settings that make the source-task weights what they are.
SOURCE_SETTINGS = ("base", "input_size", "alpha", "dropout", "batch_size", "seed", "mixed_precision",
                   "source_classes", "source_images", "source_epochs", "source_learning_rate")

Log = Callable[[str], None]


def source_settings(settings: TransferSettings) -> dict:
    return {k: v for k, v in settings.as_dict().items() if k in SOURCE_SETTINGS}


def pretrain_on_source(settings: TransferSettings, data_uri: str, out_uri: str, log: Log = print) -> dict:
    """Train ``settings.base`` from scratch on a source task; save the base's weights.

    Writes ``base.weights.h5`` (the base alone, loadable with ``--weights``) and
    ``source.json``, last.
    """
    import keras

    from components.transfer.data import source_splits
    from components.transfer.models import NO_AUGMENTATION, base_of, build_transfer_model, compile_for_phase

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
        compile_for_phase(model, settings.source_learning_rate, jit_compile(settings.xla, gpu))
        log(f"transfer {settings.base}: pretraining on the source task, {splits.describe()}")
        history = model.fit(splits.train, validation_data=splits.val, epochs=settings.source_epochs, verbose=0)
    val_accuracy = float(history.history["val_accuracy"][-1])
    record = {
        "base": settings.base, "data": data_uri, "classes": list(settings.source_classes),
        "class_names": splits.class_names, "train_images": splits.counts["train"],
        "val_images": splits.counts["val"], "epochs": settings.source_epochs, "input_size": settings.input_size,
        "alpha": settings.alpha, "learning_rate": settings.source_learning_rate,
        "val_accuracy": val_accuracy, "accuracy": float(history.history["accuracy"][-1]),
        "seconds": time.perf_counter() - started, "settings": source_settings(settings),
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
