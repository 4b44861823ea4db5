"""Transfer-learning data: image folders, their checks and splits, and the tf.data seam.

Two kinds of input, told apart by their contents:

* an **image folder** (local or gs://): one sub-folder per class of PNG/JPEG/BMP/GIF
  files, split here into train/validation/test per class with a seed; or already
  split as ``train/``, ``val/`` (or ``validation/``) and ``test/``, each holding
  the same class folders;
* a **dataset artifact** of the data step (``metadata.json`` + ``.npy`` arrays):
  grey Fashion-MNIST, made 3-channel and resized on the fly.

Every file is decoded once up front, so an unreadable image is named before
training starts. :func:`load_splits` is the seam: it returns ``tf.data``
datasets (decoded, resized, cached, shuffled, batched, prefetched) that Keras
consumes under any backend.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.core import storage
from components.core.dataset import METADATA, load_dataset
from components.core.errors import UserError
from components.core.settings import FASHION_MNIST_CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what tf.io.decode_image reads
DECODABLE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
IMAGE_FOLDER_MARKER = "image_folder.json"
SOURCE_CLASSES = (0, 1, 2, 3, 4)  # the offline source task: T-shirt/top .. Coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # the offline target task: Sandal .. Ankle boot
CACHE_MODES = ("memory", "disk", "none")


def class_folder_name(label: int) -> str:
    """``"Ankle boot"`` -> ``"ankle_boot"``: a portable folder name for a Fashion-MNIST class."""
    return re.sub(r"[^a-z0-9]+", "_", FASHION_MNIST_CLASSES[label].lower()).strip("_")


def check_classes(classes: Sequence[int], num_classes: int, what: str) -> tuple[int, ...]:
    classes = tuple(int(c) for c in classes)
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise UserError(f"{what} classes {list(classes)}: expected at least two different labels "
                        f"from 0..{num_classes - 1}")
    return classes


# ------------------------------------------------------------ the target data step

def write_image_folder(data_uri: str, out_uri: str, classes: Sequence[int] = TARGET_CLASSES,
                       images_per_class: int | None = None, seed: int = 42) -> dict:
    """Write Fashion-MNIST ``classes`` from a dataset artifact as an image folder of PNG files.

    Images come from all three splits of the artifact (the transfer step splits
    the folder again, its own way); ``images_per_class`` keeps a seeded sample.
    ``image_folder.json`` is written last and marks the folder complete.
    """
    from PIL import Image

    if images_per_class is not None:
        images_per_class = int(images_per_class)  # KFP hands numbers over as floats
    if images_per_class is not None and images_per_class < 3:
        raise UserError(f"images_per_class={images_per_class}: expected at least 3 "
                        "(one each for training, validation and test)")
    storage.check_writable(out_uri)
    data = load_dataset(data_uri)
    classes = check_classes(classes, int(data.metadata["num_classes"]), "image folder")
    rng = np.random.default_rng(seed)
    counts = {}
    with tempfile.TemporaryDirectory(prefix="study-images-") as tmp:
        for label in classes:
            folder = Path(tmp, class_folder_name(label))
            folder.mkdir()
            picked = [(split, int(i)) for split in ("train", "val", "test")
                      for i in np.flatnonzero(np.asarray(data.y[split]) == label)]
            if images_per_class is not None and len(picked) > images_per_class:
                keep = np.sort(rng.choice(len(picked), images_per_class, replace=False))
                picked = [picked[i] for i in keep]
            if not picked:
                raise UserError(f"{data_uri}: no images of class {label} ({FASHION_MNIST_CLASSES[label]})")
            for split, i in picked:
                Image.fromarray(np.asarray(data.x[split][i]), mode="L").save(folder / f"{split}_{i:05d}.png")
            counts[folder.name] = len(picked)
        # A copy, not a rename: the scratch folder may be on another file system (a container's /tmp).
        storage.upload_dir(tmp, out_uri)
    record = {"source": data_uri, "fashion_mnist_labels": list(classes), "class_counts": counts,
              "images": sum(counts.values()), "seed": seed, "images_per_class": images_per_class}
    storage.write_text(storage.join(out_uri, IMAGE_FOLDER_MARKER), json.dumps(record, indent=2))
    return record


# ------------------------------------------------------------- scanning a folder

@dataclass
class FileSplits:
    """Files and labels of each split of an image folder."""

    class_names: list[str]
    files: dict[str, list[Path]] = field(default_factory=dict)
    labels: dict[str, list[int]] = field(default_factory=dict)
    layout: str = "one folder per class"


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _scan_classes(folder: Path, shown: str) -> dict[str, list[Path]]:
    classes = {d.name: _images_in(d) for d in _class_dirs(folder)}
    if len(classes) < 2:
        found = f"1 class folder ({next(iter(classes))!r})" if classes else "no class folders"
        raise UserError(f"image folder {shown}: found {found}; expected at least two sub-folders, "
                        "one per class")
    for name, files in classes.items():
        if not files:
            raise UserError(f"image folder {shown}: class folder {name!r} has no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
    return classes


def _split_folders(root: Path) -> dict[str, Path] | None:
    """``{"train": .., "val": .., "test": ..}`` when the folder is already split, else None."""
    names = {d.name for d in _class_dirs(root)}
    known = {alias for aliases in SPLIT_FOLDERS.values() for alias in aliases}
    if "train" not in names or not names <= known:
        return None
    found = {}
    for split, aliases in SPLIT_FOLDERS.items():
        present = [a for a in aliases if a in names]
        if not present:
            raise UserError(f"image folder {root}: has train/ but no {'/ or '.join(aliases)}/ folder; "
                            "expected train, val and test sub-folders, or one sub-folder per class")
        found[split] = root / present[0]
    return found


def scan_image_folder(root: Path, shown: str, val_fraction: float, test_fraction: float,
                      split_seed: int) -> FileSplits:
    """Class folders -> files per split, checked: two classes or more, none empty, same classes everywhere."""
    if not root.is_dir():
        raise UserError(f"image folder {shown}: no such folder")
    pre_split = _split_folders(root)
    if pre_split is not None:
        per_split = {split: _scan_classes(folder, f"{shown}/{folder.name}") for split, folder in pre_split.items()}
        class_sets = {split: sorted(classes) for split, classes in per_split.items()}
        if len({tuple(names) for names in class_sets.values()}) > 1:
            detail = "; ".join(f"{pre_split[s].name}: {', '.join(names)}" for s, names in class_sets.items())
            raise UserError(f"image folder {shown}: class sets differ between splits ({detail})")
        class_names = class_sets["train"]
        out = FileSplits(class_names, layout="train/val/test folders")
        for split, classes in per_split.items():
            out.files[split] = [f for name in class_names for f in classes[name]]
            out.labels[split] = [i for i, name in enumerate(class_names) for _ in classes[name]]
        return out

    classes = _scan_classes(root, shown)
    class_names = sorted(classes)
    out = FileSplits(class_names)
    for split in ("train", "val", "test"):
        out.files[split], out.labels[split] = [], []
    rng = np.random.default_rng(split_seed)
    for label, name in enumerate(class_names):
        files = classes[name]
        n = len(files)
        n_val = max(1, int(round(n * val_fraction)))
        n_test = max(1, int(round(n * test_fraction)))
        if n - n_val - n_test < 1:
            raise UserError(f"image folder {shown}: class {name!r} has {n} image(s), too few to split into "
                            f"training, validation ({val_fraction:g}) and test ({test_fraction:g})")
        order = rng.permutation(n)
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        for split, idx in parts.items():
            out.files[split] += [files[i] for i in sorted(idx)]
            out.labels[split] += [label] * len(idx)
    return out


def check_images(files: Sequence[Path], root: Path, shown: str) -> None:
    """Decode every file once (threads: Pillow releases the GIL); name the first one that fails."""
    from PIL import Image

    def problem(path: Path) -> str | None:
        try:
            with Image.open(path) as image:
                image.load()
                if image.format not in DECODABLE_FORMATS:
                    return f"a {image.format} image, expected {'/'.join(DECODABLE_FORMATS)}"
        except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for broken files
            return str(err).splitlines()[0] if str(err) else type(err).__name__
        return None

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, message in zip(files, pool.map(problem, files)):
            if message:
                rel = path.relative_to(root).as_posix()
                raise UserError(f"{storage.join(shown, rel)}: unreadable image file ({message})")


# -------------------------------------------------------------------- the seam

@dataclass
class Splits:
    """What training needs: batched train/val/test streams and the class names."""

    train: Any  # tf.data.Dataset of (float32 images 0..255, int32 labels)
    val: Any
    test: Any
    class_names: list[str]
    counts: dict[str, int]
    kind: str  # "image folder" | "dataset artifact"
    location: str
    layout: str = ""

    def describe(self) -> str:
        c = self.counts
        return (f"{self.kind} {self.location} ({self.layout}): {len(self.class_names)} classes "
                f"({', '.join(self.class_names)}); {c['train']:,} training, {c['val']:,} validation and "
                f"{c['test']:,} test images")


def is_dataset_artifact(uri: str) -> bool:
    return storage.exists(storage.join(uri, METADATA))


def load_splits(uri: str, *, input_size: int, batch_size: int, seed: int, workdir: Path,
                val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 42,
                classes: Sequence[int] | None = None, cache: str = "memory") -> Splits:
    """Open an image folder or a dataset artifact as batched ``tf.data`` streams.

    ``workdir`` is scratch space: a gs:// image folder is fetched there, and a
    ``cache="disk"`` cache lives there.
    """
    if cache not in CACHE_MODES:
        raise UserError(f"cache={cache!r}: expected one of {', '.join(CACHE_MODES)}")
    if is_dataset_artifact(uri):
        return _artifact_splits(uri, input_size=input_size, batch_size=batch_size, seed=seed, classes=classes)
    if classes is not None:
        raise UserError(f"{uri}: a class selection applies to a dataset artifact, not an image folder "
                        "(remove or add class folders instead)")
    if storage.is_gcs(uri):
        root = Path(workdir, "images")
        if not storage.list_files(uri):
            raise UserError(f"image folder {uri}: no files there")
        storage.download_dir(uri, root)  # decoded once, then read locally every epoch
    else:
        root = Path(uri)
    found = scan_image_folder(root, uri, val_fraction, test_fraction, split_seed)
    check_images([f for split in ("train", "val", "test") for f in found.files[split]], root, uri)
    streams = {
        split: image_stream(found.files[split], found.labels[split], input_size=input_size, batch_size=batch_size,
                            training=split == "train", seed=seed,
                            cache=None if cache == "none" else
                            ("" if cache == "memory" else str(Path(workdir, f"cache-{split}"))))
        for split in ("train", "val", "test")
    }
    return Splits(**streams, class_names=found.class_names,
                  counts={s: len(found.files[s]) for s in ("train", "val", "test")},
                  kind="image folder", location=uri, layout=found.layout)


def _artifact_splits(uri: str, *, input_size: int, batch_size: int, seed: int,
                     classes: Sequence[int] | None, only: Sequence[str] = ("train", "val", "test"),
                     limit: dict[str, int] | None = None) -> Splits:
    data = load_dataset(uri)
    num_classes = int(data.metadata["num_classes"])
    classes = tuple(range(num_classes)) if classes is None else check_classes(classes, num_classes, "dataset")
    remap = np.full(num_classes, -1, dtype=np.int32)
    remap[list(classes)] = np.arange(len(classes), dtype=np.int32)
    streams, counts = {}, {}
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        y_all = np.asarray(data.y[split])
        keep = np.flatnonzero(remap[y_all] >= 0)
        if limit and limit.get(split) and len(keep) > limit[split]:
            keep = np.sort(rng.choice(keep, limit[split], replace=False))
        counts[split] = int(len(keep))
        if split not in only:
            streams[split] = None
            continue
        if not len(keep):
            raise UserError(f"dataset {uri}: the {split} split has no images of classes {list(classes)}")
        x = np.ascontiguousarray(np.asarray(data.x[split])[keep])
        streams[split] = array_stream(x, remap[y_all[keep]], input_size=input_size, batch_size=batch_size,
                                      training=split == "train", seed=seed)
    names = [FASHION_MNIST_CLASSES[c] if num_classes == len(FASHION_MNIST_CLASSES) else str(c) for c in classes]
    return Splits(**streams, class_names=names, counts=counts, kind="dataset artifact", location=uri,
                  layout="its train/val/test splits")


def source_splits(uri: str, *, classes: Sequence[int], input_size: int, batch_size: int, seed: int,
                  train_images: int | None = None) -> Splits:
    """The offline source task: a dataset artifact's train and val splits, restricted to ``classes``."""
    if not is_dataset_artifact(uri):
        raise UserError(f"source data {uri}: not a dataset artifact (no {METADATA}); "
                        "give the data step's output (study data --out ...)")
    return _artifact_splits(uri, input_size=input_size, batch_size=batch_size, seed=seed, classes=classes,
                            only=("train", "val"), limit={"train": train_images} if train_images else None)


def image_stream(files: Sequence[Path], labels: Sequence[int], *, input_size: int, batch_size: int,
                 training: bool, seed: int, cache: str | None):
    """Decode and resize in parallel, cache the resized uint8 images (``""``: in memory, a path: on
    disk, None: not at all), shuffle the training split, batch, prefetch."""
    import tensorflow as tf

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8)
        image = tf.image.resize(image, (input_size, input_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices(([str(f) for f in files], np.asarray(labels, dtype=np.int32)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache is not None:
        ds = ds.cache(cache)  # the first epoch decodes, later ones read the cache
    return _finish(ds, len(files), batch_size=batch_size, training=training, seed=seed)


def array_stream(x: np.ndarray, y: np.ndarray, *, input_size: int, batch_size: int, training: bool, seed: int):
    """Grey 28x28 arrays (kept small in memory) -> batches of RGB ``input_size`` images, resized per batch."""
    import tensorflow as tf

    def to_rgb(images, labels):
        images = tf.image.grayscale_to_rgb(tf.expand_dims(images, -1))
        return tf.image.resize(images, (input_size, input_size)), labels

    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, dtype=np.int32)))
    return _finish(ds, len(x), batch_size=batch_size, training=training, seed=seed, per_batch=to_rgb)


def _finish(ds, n: int, *, batch_size: int, training: bool, seed: int, per_batch=None):
    import tensorflow as tf

    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    to_float = per_batch or (lambda images, labels: (tf.cast(images, tf.float32), labels))
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
