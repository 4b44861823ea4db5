"""components.core.dataset: the artifact the data step writes and every trial reads."""

import json
import re

import numpy as np
import pytest

from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.data import DataSettings, prepare_dataset


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


def _artifact(tmp_path, mutate) -> str:
    """A small artifact written by the data step, then made inconsistent by ``mutate(arrays, metadata)``."""
    out = tmp_path / "ds"
    prepare_dataset(DataSettings(train_size=300, test_size=100, val_fraction=0.2, seed=3), str(out))
    arrays = {p.stem: np.load(p) for p in out.glob("*.npy")}
    metadata = json.loads((out / "metadata.json").read_text())
    mutate(arrays, metadata)
    for name, array in arrays.items():
        np.save(out / f"{name}.npy", array)
    (out / "metadata.json").write_text(json.dumps(metadata))
    return str(out)


@pytest.mark.parametrize("mutate, message", [
    (lambda a, m: a.update(y_val=a["y_val"][:-1]), "x_val.npy has 60 images but y_val.npy has (59,) labels"),
    (lambda a, m: a["y_train"].__setitem__(7, 12), "y_train.npy label 12 at index 7 is outside 0..9"),
    (lambda a, m: m.update(num_classes=5), "y_train.npy label"),
    (lambda a, m: m.update(num_classes=12), "the labels hold 10 classes but metadata.json says num_classes=12"),
    (lambda a, m: a.update(x_test=np.repeat(a["x_test"][..., None], 3, axis=-1)),
     "x_test.npy holds images of shape (28, 28, 3), expected (28, 28)"),
    (lambda a, m: a.update(x_train=a["x_train"][:, :14, :14]), "x_train.npy holds images of shape (14, 14)"),
    (lambda a, m: m.update(image_shape=[32, 32]), "image_shape [32, 32] in metadata.json, expected [28, 28]"),
    (lambda a, m: m.update(num_classes="ten"), "num_classes='ten' in metadata.json"),
])
def test_inconsistent_artifact_is_refused_when_loaded(tmp_path, fmnist_dir, mutate, message):
    uri = _artifact(tmp_path, mutate)
    with pytest.raises(UserError, match=re.escape(message)):
        load_dataset(uri)
