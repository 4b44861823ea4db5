"""Fashion-MNIST: find the IDX files, parse and check them, split them, write a dataset artifact.

The artifact's format (and its reader, which every trial uses) is ``components.core.dataset``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.core import storage
from components.core.config import Rule, from_mapping, ruled
from components.core.dataset import IMAGE_SHAPE, stratified_subset, write_dataset
from components.core.errors import UserError
from components.core.profiles import read_profile
from components.core.rules import FRACTION, INTEGER, POSITIVE_INT

NUM_CLASSES = 10
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Debian's dataset-fashion-mnist package puts the four .gz files here.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


# ----------------------------------------------------------------------- parsing

def parse_idx(raw: bytes, *, name: str, expect_magic: int) -> np.ndarray:
    """Decode one IDX file (already gunzipped), checking magic, dimensions and length."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # zlib.error: a valid header over a garbled body
            raise UserError(f"{name}: corrupt gzip data ({err})") from None
    if len(raw) < 4:
        raise UserError(f"{name}: truncated, {len(raw)} bytes is shorter than an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        raise UserError(f"{name}: bad IDX magic number {magic:#010x}, expected {expect_magic:#010x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    body = len(raw) - header
    if body != expected:
        raise UserError(f"{name}: truncated or padded, {body} data bytes for dimensions {dims} "
                        f"(expected {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def check_pair(images: np.ndarray, labels: np.ndarray, *, split: str) -> None:
    if images.shape[1:] != IMAGE_SHAPE:
        raise UserError(f"{split} images: dimensions {images.shape[1:]}, expected {IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise UserError(f"{split}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise UserError(f"{split} labels: label {int(labels[bad])} at index {bad} "
                        f"is outside 0..{NUM_CLASSES - 1}")


# ------------------------------------------------------------------------ sources

def _find_file(folder: str, base: str) -> str | None:
    for candidate in (f"{base}.gz", base):
        uri = storage.join(folder, candidate)
        if storage.exists(uri):
            return uri
    return None


def _read_folder(folder: str) -> tuple[dict[str, bytes], dict[str, str]]:
    if not storage.is_gcs(folder) and not Path(folder).is_dir():
        raise UserError(f"{folder}: no such data folder")
    raw, names = {}, {}
    for key, base in IDX_FILES.items():
        uri = _find_file(folder, base)
        if uri is None:
            raise UserError(f"{folder}: missing {base} (or {base}.gz)")
        try:
            raw[key] = storage.read_bytes(uri)
        except PermissionError:
            raise UserError(f"{uri}: cannot read the file (permission denied)") from None
        names[key] = uri
    return raw, names


def _download_keras() -> tuple[dict[str, bytes], dict[str, str]]:
    import keras

    raw, names = {}, {}
    for key, base in IDX_FILES.items():
        try:
            path = keras.utils.get_file(f"{base}.gz", origin=KERAS_ORIGIN + f"{base}.gz",
                                        cache_subdir="datasets/fashion-mnist")
        except Exception as err:  # noqa: BLE001 - any download failure means "not available"
            raise UserError(
                "Fashion-MNIST not found: give --source PATH|gs://URI, or install Debian's "
                f"dataset-fashion-mnist; the download failed too ({type(err).__name__})") from None
        raw[key] = Path(path).read_bytes()
        names[key] = path
    return raw, names


def resolve_source(source: str | None) -> tuple[dict[str, bytes], dict[str, str], str]:
    """Bytes of the four IDX files, their locations and a source label.

    Order: the user's folder/URI; Debian's package files; the Keras download.
    """
    if source:
        raw, names = _read_folder(source)
        return raw, names, source
    if all(_find_file(DEBIAN_DIR, base) for base in IDX_FILES.values()):
        raw, names = _read_folder(DEBIAN_DIR)
        return raw, names, f"debian:{DEBIAN_DIR}"
    raw, names = _download_keras()
    return raw, names, "keras-download"


def load_fashion_mnist(source: str | None = None):
    """``(x_train, y_train, x_test, y_test, provenance)`` with every file checked."""
    raw, names, label = resolve_source(source)
    arrays = {}
    for key, data in raw.items():
        magic = IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC
        arrays[key] = parse_idx(data, name=names[key], expect_magic=magic)
    check_pair(arrays["train_images"], arrays["train_labels"], split="train")
    check_pair(arrays["test_images"], arrays["test_labels"], split="test")
    provenance = {
        "source": label,
        "files": {IDX_FILES[k]: {"location": names[k], "sha256": hashlib.sha256(raw[k]).hexdigest()}
                  for k in IDX_FILES},
    }
    return (arrays["train_images"], arrays["train_labels"],
            arrays["test_images"], arrays["test_labels"], provenance)


# ----------------------------------------------------------------------- splits

def stratified_split(labels: np.ndarray, val_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): every class split in the same proportion."""
    val = stratified_subset(labels, int(round(len(labels) * val_fraction)), rng)
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    return train, val


# ----------------------------------------------------------------------- artifact

_STUDY_DATA = read_profile("study")["data"]  # the defaults are the study profile's, not restated here
SOURCE_RULE = Rule("a folder, gs:// or s3:// URI", lambda v: bool(v.strip()),
                   null="Debian's package, else the download")


@dataclass
class DataSettings:
    """A profile's ``data`` section (and ``study data``'s flags), checked by their rules."""

    source: str | None = ruled(SOURCE_RULE, default=_STUDY_DATA["source"])
    val_fraction: float = ruled(FRACTION, default=_STUDY_DATA["val_fraction"])
    # images drawn from the 60,000 / 10,000 before the split
    train_size: int | None = ruled(POSITIVE_INT.with_null("all 60,000"), default=_STUDY_DATA["train_size"])
    test_size: int | None = ruled(POSITIVE_INT.with_null("all 10,000"), default=_STUDY_DATA["test_size"])
    seed: int = ruled(INTEGER, default=_STUDY_DATA["seed"])

    def checked(self) -> DataSettings:
        return from_mapping(DataSettings, dataclasses.asdict(self))


def prepare_dataset(settings: DataSettings, out_uri: str) -> dict:
    """Load, check, subset and split Fashion-MNIST; write the artifact; return its metadata."""
    settings = settings.checked()
    storage.check_writable(out_uri)
    x_train, y_train, x_test, y_test, provenance = load_fashion_mnist(settings.source)
    rng = np.random.default_rng(settings.seed)
    if settings.train_size:
        keep = stratified_subset(y_train, settings.train_size, rng)
        x_train, y_train = x_train[keep], y_train[keep]
    if settings.test_size:
        keep = stratified_subset(y_test, settings.test_size, rng)
        x_test, y_test = x_test[keep], y_test[keep]
    train_idx, val_idx = stratified_split(y_train, settings.val_fraction, rng)
    splits = {
        "train": (x_train[train_idx], y_train[train_idx]),
        "val": (x_train[val_idx], y_train[val_idx]),
        "test": (x_test, y_test),
    }
    for split, (_, y) in splits.items():
        missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(y).tolist()))
        if missing:
            raise UserError(f"{split} split has no images of class(es) {missing}: "
                            "use more images or a different val_fraction")
    metadata = {
        **provenance,
        "settings": {"val_fraction": settings.val_fraction, "train_size": settings.train_size,
                     "test_size": settings.test_size, "seed": settings.seed},
        "image_shape": list(IMAGE_SHAPE),
        "num_classes": NUM_CLASSES,
        "counts": {s: int(len(y)) for s, (_, y) in splits.items()},
        "class_counts": {s: np.bincount(y, minlength=NUM_CLASSES).tolist()
                         for s, (_, y) in splits.items()},
    }
    write_dataset(splits, metadata, out_uri)
    return metadata
