"""The dataset artifact: what the data step writes and every trial, search and evaluation reads.

The artifact is a folder of plain ``.npy`` arrays (uint8 images, uint8 labels) so that every
trial can memory-map it instead of decoding it again, plus ``metadata.json``, written last: its
presence is what says the artifact is complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.core import storage
from components.core.errors import UserError
from components.core.faults import fault_point

IMAGE_SHAPE = (28, 28)
SPLITS = ("train", "val", "test")
METADATA = "metadata.json"


def write_dataset(splits: dict[str, tuple[np.ndarray, np.ndarray]], metadata: dict,
                  out_uri: str) -> None:
    tmp = storage.scratch_dir("study-data-")
    try:
        for split, (x, y) in splits.items():
            np.save(Path(tmp, f"x_{split}.npy"), np.ascontiguousarray(x, dtype=np.uint8))
            np.save(Path(tmp, f"y_{split}.npy"), np.ascontiguousarray(y, dtype=np.uint8))
        # Rewriting an artifact in place: the old marker goes before the first array is replaced,
        # so a kill part-way leaves arrays that no marker vouches for, never old and new mixed.
        storage.delete(storage.join(out_uri, METADATA))
        for n, name in enumerate(sorted(p.name for p in Path(tmp).glob("*.npy")), start=1):
            storage.upload_file(Path(tmp, name), storage.join(out_uri, name))
            fault_point("data.array-written", n)
    finally:
        storage.release_scratch(tmp)
    # Written last: a reader trusts the arrays only once this exists.
    storage.write_text(storage.join(out_uri, METADATA), json.dumps(metadata, indent=2))


def stratified_subset(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` samples keeping class proportions (largest-remainder rounding)."""
    classes, counts = np.unique(labels, return_counts=True)
    if size >= len(labels):
        return np.arange(len(labels))
    quota = counts * size / len(labels)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: size - take.sum()]:
        take[i] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, take)]
    return np.sort(np.concatenate(picked))


@dataclass
class Dataset:
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    metadata: dict

    def images(self, split: str, order: np.ndarray | None = None) -> np.ndarray:
        """Images (those at ``order``, in that order) as float32 in [0, 1] with a channel axis: (N, 28, 28, 1)."""
        x = self.x[split] if order is None else self.x[split][order]
        return (x.astype("float32") / 255.0)[..., None]


def load_dataset(uri: str, cache_dir: str | Path | None = None) -> Dataset:
    """Open a dataset artifact; local artifacts are memory-mapped, gs:// ones fetched first."""
    if storage.is_gcs(uri):
        # A scratch folder goes away with this process, even a killed one (see storage._scratch).
        cache = Path(cache_dir) if cache_dir else storage.scratch_dir("study-data-")
        if not (cache / METADATA).exists():
            storage.download_dir(uri, cache)
        local = cache
    else:
        local = Path(uri)
    if not (local / METADATA).exists():
        raise UserError(f"{uri}: not a dataset artifact (no {METADATA}; was the data step finished?)")
    x, y = {}, {}
    try:
        metadata = json.loads((local / METADATA).read_text())
        for split in SPLITS:
            x[split] = np.load(local / f"x_{split}.npy", mmap_mode="r")
            y[split] = np.load(local / f"y_{split}.npy", mmap_mode="r")
    except PermissionError as err:
        raise UserError(f"{uri}: cannot read the dataset artifact ({err.filename}: permission denied)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{uri}: dataset artifact is damaged ({err})") from None
    check_artifact(uri, x, y, metadata)
    return Dataset(x=x, y=y, metadata=metadata)


def check_artifact(uri: str, x: dict[str, np.ndarray], y: dict[str, np.ndarray], metadata: dict) -> None:
    """The arrays agree with each other and with the marker: else Keras fails later, far from the cause."""
    num_classes = metadata.get("num_classes")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise UserError(f"{uri}: num_classes={num_classes!r} in {METADATA}, expected an integer of at least 2")
    shape = tuple(metadata.get("image_shape") or ())
    if shape != IMAGE_SHAPE:
        raise UserError(f"{uri}: image_shape {list(shape)} in {METADATA}, expected {list(IMAGE_SHAPE)} (grayscale)")
    seen = set()
    for split in SPLITS:
        images, labels = x[split], y[split]
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise UserError(f"{uri}: x_{split}.npy holds images of shape {images.shape[1:]}, expected "
                            f"{IMAGE_SHAPE} (one grayscale channel)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise UserError(f"{uri}: x_{split}.npy has {len(images)} images but y_{split}.npy has "
                            f"{labels.shape} labels, expected {len(images)}")
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise UserError(f"{uri}: {split} arrays are {images.dtype}/{labels.dtype}, expected uint8")
        if labels.size and int(labels.max()) >= num_classes:
            bad = int(np.argmax(labels >= num_classes))
            raise UserError(f"{uri}: y_{split}.npy label {int(labels[bad])} at index {bad} is outside "
                            f"0..{num_classes - 1} (num_classes={num_classes})")
        seen.update(np.unique(labels).tolist())
    if len(seen) != num_classes:
        raise UserError(f"{uri}: the labels hold {len(seen)} classes but {METADATA} says "
                        f"num_classes={num_classes}")
