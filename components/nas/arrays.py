"""The search's input: the dataset artifact's splits as the numpy arrays AutoKeras takes."""

from __future__ import annotations

import numpy as np

from components.core.errors import UserError
from components.nas.config import NasConfig


def search_arrays(data, config: NasConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_val, y_val)`` as AutoKeras wants them: numpy arrays, labels one-hot.

    One-hot labels make the classification head's output column i mean class i, with no
    label encoder in between. Every class must be in both splits, or validation accuracy
    (the search objective) would say nothing about it.
    """
    from components.core.dataset import stratified_subset
    from components.data import stratified_split

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


def _check_classes(labels: np.ndarray, num_classes: int, what: str, hint: str) -> None:
    missing = sorted(set(range(num_classes)) - set(np.unique(labels).tolist()))
    if missing:
        raise UserError(f"{what} has no images of class(es) {missing} ({len(labels)} images): {hint}")


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[labels.astype(int)]
