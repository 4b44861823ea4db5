"""Test-set evaluation of a trained model: accuracy, loss, per-class accuracy, confusion matrix, curves."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from components.cnn.models import param_counts
from components.core import storage
from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.core.settings import FASHION_MNIST_CLASSES


def load_model(model_uri: str):
    """Load ``model.keras`` from a trial output folder (local or gs://)."""
    import keras

    uri = storage.join(model_uri, "model.keras")
    with tempfile.TemporaryDirectory(prefix="study-model-") as tmp:
        local = Path(tmp, "model.keras")
        try:
            storage.download_file(uri, local)
        except UserError:
            raise UserError(f"{model_uri}: no model.keras (was the training step finished?)") from None
        try:
            return keras.models.load_model(local)
        except Exception as err:  # noqa: BLE001 - Keras raises ValueError, OSError, zipfile errors...
            # Keras names its own temporary copy, not the file given: name the one given.
            raise UserError(f"{uri}: not a readable Keras model (damaged or truncated: "
                            f"{type(err).__name__})") from None


def check_fits(model, model_uri: str, data_uri: str, images: np.ndarray, num_classes: int) -> None:
    """The model takes these images and predicts this many classes; else one line, not a Keras trace."""
    wanted = tuple(model.input_shape[1:])
    given = tuple(images.shape[1:])
    if len(wanted) != len(given) or any(w is not None and w != g for w, g in zip(wanted, given)):
        raise UserError(f"{data_uri}: images of shape {given}, but the model at {model_uri} expects {wanted}")
    classes = model.output_shape[-1]
    if classes != num_classes:
        raise UserError(f"{data_uri}: {num_classes} classes, but the model at {model_uri} predicts {classes}")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(int), y_pred.astype(int)), 1)
    return matrix


def evaluate_model(model_uri: str, data_uri: str, out_uri: str, batch_size: int = 512) -> dict:
    """Evaluate on the test split; write metrics.json, confusion_matrix.png and curves.png."""
    storage.check_writable(out_uri)
    data = load_dataset(data_uri)
    model = load_model(model_uri)
    x_test, y_test = data.images("test"), np.asarray(data.y["test"])
    check_fits(model, model_uri, data_uri, x_test, int(data.metadata["num_classes"]))
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
    y_pred = np.argmax(model.predict(x_test, batch_size=batch_size, verbose=0), axis=1)
    num_classes = int(data.metadata["num_classes"])
    matrix = confusion_matrix(y_test, y_pred, num_classes)
    per_class = (np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)).tolist()
    result = {
        "test_accuracy": float(accuracy),
        "test_loss": float(loss),
        "test_images": int(len(y_test)),
        "params": param_counts(model),
        "per_class_accuracy": dict(zip(FASHION_MNIST_CLASSES, per_class)),
        "confusion_matrix": matrix.tolist(),
        "class_names": list(FASHION_MNIST_CLASSES),
    }
    history = _read_history(model_uri)
    with tempfile.TemporaryDirectory(prefix="study-eval-") as tmp:
        plot_confusion(matrix, Path(tmp, "confusion_matrix.png"))
        storage.upload_file(Path(tmp, "confusion_matrix.png"), storage.join(out_uri, "confusion_matrix.png"))
        if history:
            plot_curves(history, Path(tmp, "curves.png"))
            storage.upload_file(Path(tmp, "curves.png"), storage.join(out_uri, "curves.png"))
    storage.write_text(storage.join(out_uri, "metrics.json"), json.dumps(result, indent=2))
    return result


def _read_history(model_uri: str) -> dict | None:
    uri = storage.join(model_uri, "history.json")
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def plot_confusion(matrix: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(FASHION_MNIST_CLASSES))
    ax.set_xticks(ticks, FASHION_MNIST_CLASSES, rotation=45, ha="right")
    ax.set_yticks(ticks, FASHION_MNIST_CLASSES)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    """Accuracy and loss per epoch, training beside validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for name, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if name in history:
                epochs = range(1, len(history[name]) + 1)
                ax.plot(epochs, history[name], style, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs: no 1.5 on the axis
        ax.set_title(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
