import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from components import data as fm
from components.data import DataSettings, load_dataset, load_fashion_mnist, prepare_dataset, stratified_split
from components.errors import UserError


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


def test_an_unfinished_artifact_is_not_trusted(tmp_path):
    (tmp_path / "x_train.npy").write_bytes(b"")
    with pytest.raises(UserError, match=r"not a dataset artifact \(no metadata.json"):
        load_dataset(str(tmp_path))


def test_rewrite_killed_part_way_leaves_no_marker_over_mixed_arrays(tmp_path, fmnist_dir):
    """Killed after the 3rd of six arrays (x_test, x_train, x_val: new; y_*: old) of a rewrite in place."""
    import os
    import signal

    from tests.conftest import run_cli

    out = tmp_path / "ds"
    prepare_dataset(DataSettings(train_size=500, test_size=200, seed=1), str(out))
    old_y_test = np.load(out / "y_test.npy")
    killed = run_cli("data", "--out", out, "--train-size", "600", "--test-size", "300", "--seed", "2",
                     env={**os.environ, "STUDY_FAULT": "data.array-written@3"})
    assert killed.returncode == -signal.SIGKILL
    assert len(np.load(out / "x_test.npy")) == 300 and np.array_equal(np.load(out / "y_test.npy"), old_y_test)
    assert not (out / "metadata.json").exists()
    with pytest.raises(UserError, match="not a dataset artifact"):
        load_dataset(str(out))
    again = run_cli("data", "--out", out, "--train-size", "600", "--test-size", "300", "--seed", "2")
    assert again.returncode == 0, again.stderr
    assert load_dataset(str(out)).metadata["counts"]["test"] == 300 == len(load_dataset(str(out)).y["test"])
