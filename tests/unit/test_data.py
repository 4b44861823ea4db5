import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from components import data as fm
from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.data import DataSettings, load_fashion_mnist, prepare_dataset, stratified_split


def test_real_files_parse_with_expected_shapes_and_balance(fmnist_dir):
    x_train, y_train, x_test, y_test, prov = load_fashion_mnist(str(fmnist_dir))
    assert x_train.shape == (60_000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10_000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert len(prov["files"]) == 4
    assert all(len(f["sha256"]) == 64 for f in prov["files"].values())


def test_debian_package_is_found_without_a_source(fmnist_dir):
    *_, prov = load_fashion_mnist(None)
    assert prov["source"] == f"debian:{fmnist_dir}"


@pytest.fixture
def copy_dir(tmp_path, fmnist_dir):
    """Uncompressed copies of the four files, to corrupt one at a time."""
    for name in fm.IDX_FILES.values():
        Path(tmp_path, name).write_bytes(gzip.decompress(Path(fmnist_dir, f"{name}.gz").read_bytes()))
    return tmp_path


def test_raw_idx_files_are_accepted(copy_dir):
    x_train, *_ = load_fashion_mnist(str(copy_dir))
    assert x_train.shape == (60_000, 28, 28)


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def test_wrong_magic_is_named(copy_dir):
    _patch(copy_dir / "train-images-idx3-ubyte", 0, b"\x00\x00\x08\x01")
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte: bad IDX magic number 0x00000801"):
        load_fashion_mnist(str(copy_dir))


def test_truncated_file_is_named(copy_dir):
    path = copy_dir / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte: truncated or padded"):
        load_fashion_mnist(str(copy_dir))


def test_truncated_gzip_is_named(tmp_path, fmnist_dir):
    for name in fm.IDX_FILES.values():
        shutil.copy(Path(fmnist_dir, f"{name}.gz"), tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte.gz: corrupt gzip data"):
        load_fashion_mnist(str(tmp_path))


def test_label_out_of_range_is_named(copy_dir):
    _patch(copy_dir / "train-labels-idx1-ubyte", 8 + 123, bytes([12]))
    with pytest.raises(UserError, match=r"train labels: label 12 at index 123 is outside 0..9"):
        load_fashion_mnist(str(copy_dir))


def test_count_mismatch_is_named(copy_dir):
    path = copy_dir / "t10k-labels-idx1-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + (9_999).to_bytes(4, "big") + raw[8:-1])
    with pytest.raises(UserError, match=r"test: 10000 images but 9999 labels"):
        load_fashion_mnist(str(copy_dir))


def test_missing_file_is_named(copy_dir):
    (copy_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte"):
        load_fashion_mnist(str(copy_dir))


def test_stratified_split_keeps_class_proportions():
    labels = np.repeat(np.arange(10), [100, 200, 100, 100, 100, 100, 100, 100, 100, 300])
    train, val = stratified_split(labels, 0.1, np.random.default_rng(0))
    assert len(val) == 130 and len(train) == 1170
    assert not set(train) & set(val)
    assert np.bincount(labels[val]).tolist() == [10, 20, 10, 10, 10, 10, 10, 10, 10, 30]


def test_split_is_reproducible_with_a_seed():
    labels = np.random.default_rng(1).integers(0, 10, 5000)
    a = stratified_split(labels, 0.2, np.random.default_rng(42))
    b = stratified_split(labels, 0.2, np.random.default_rng(42))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_dataset_artifact_has_subsets_metadata_and_memory_maps(tmp_path, fmnist_dir):
    meta = prepare_dataset(DataSettings(train_size=2000, test_size=500, val_fraction=0.2, seed=3),
                           str(tmp_path / "ds"))
    assert meta["counts"] == {"train": 1600, "val": 400, "test": 500}
    assert meta["class_counts"]["val"] == [40] * 10
    assert meta["class_counts"]["test"] == [50] * 10
    assert json.loads((tmp_path / "ds" / "metadata.json").read_text()) == meta
    ds = load_dataset(str(tmp_path / "ds"))
    assert isinstance(ds.x["train"], np.memmap)
    images = ds.images("val")
    assert images.shape == (400, 28, 28, 1) and images.dtype == np.float32 and images.max() <= 1.0


def test_a_split_without_some_class_is_refused_and_writes_nothing(tmp_path, fmnist_dir):
    out = tmp_path / "ds"
    with pytest.raises(UserError, match=r"val split has no images of class"):
        prepare_dataset(DataSettings(train_size=30, val_fraction=0.1), str(out))
    assert not (out / "metadata.json").exists()


def test_gzip_with_a_valid_header_and_a_garbled_body_is_named(tmp_path, fmnist_dir):
    for name in fm.IDX_FILES.values():
        shutil.copy(Path(fmnist_dir, f"{name}.gz"), tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[:10] + b"\xff" * 16 + raw[26:])  # the 10-byte gzip header kept: zlib.error
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte.gz: corrupt gzip data \(.*invalid block type"):
        load_fashion_mnist(str(tmp_path))


def test_unreadable_idx_file_is_one_line(fmnist_dir):
    """A real EACCES from the OS. Root reads any file whatever its mode, so under root the read runs in a
    forked child that has dropped to `nobody` first (no stand-in for the error)."""
    import os
    import tempfile

    src = Path(tempfile.mkdtemp(prefix="unreadable-"))  # under /tmp: a folder `nobody` can enter
    try:
        src.chmod(0o755)
        for name in fm.IDX_FILES.values():
            shutil.copy(Path(fmnist_dir, f"{name}.gz"), src)
            (src / f"{name}.gz").chmod(0o644)
        (src / "t10k-labels-idx1-ubyte.gz").chmod(0o000)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop root if we have it, try the load, report the outcome
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                try:
                    load_fashion_mnist(str(src))
                    outcome = "loaded"
                except UserError as err:
                    outcome = f"UserError: {err}"
                except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails
                    outcome = f"{type(err).__name__}: {err}"
                os.write(write, outcome.encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        outcome = os.read(read, 10_000).decode()
        os.close(read)
    finally:
        shutil.rmtree(src)
    assert outcome == f"UserError: {src}/t10k-labels-idx1-ubyte.gz: cannot read the file (permission denied)"
