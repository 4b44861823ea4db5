"""Storage against the real google-cloud-storage client and gcp-storage-emulator."""

import json

import pytest

from components.core import storage
from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.data import DataSettings, prepare_dataset


def test_local_atomic_write_keeps_old_content_when_the_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with storage.atomic_local_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_local_round_trip_and_listing(tmp_path):
    storage.write_text(str(tmp_path / "a" / "b.txt"), "hello")
    storage.write_bytes(str(tmp_path / "c.bin"), b"\x00\x01")
    assert storage.read_text(str(tmp_path / "a" / "b.txt")) == "hello"
    assert storage.list_files(str(tmp_path)) == ["a/b.txt", "c.bin"]


def test_gcs_round_trip(gcs_bucket, tmp_path):
    uri = f"{gcs_bucket}/run/metrics.json"
    assert not storage.exists(uri)
    storage.write_text(uri, json.dumps({"val_accuracy": 0.93}))
    assert storage.exists(uri)
    assert json.loads(storage.read_text(uri)) == {"val_accuracy": 0.93}

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("1")
    (src / "sub" / "two.bin").write_bytes(bytes(range(256)) * 1000)
    storage.upload_dir(src, f"{gcs_bucket}/dir")
    assert storage.list_files(f"{gcs_bucket}/dir") == ["one.txt", "sub/two.bin"]
    storage.download_dir(f"{gcs_bucket}/dir", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "two.bin").read_bytes() == (src / "sub" / "two.bin").read_bytes()


def test_gcs_missing_object_and_missing_bucket_are_one_line_errors(gcs_bucket):
    with pytest.raises(UserError, match=r"no such object"):
        storage.read_bytes(f"{gcs_bucket}/nope.json")
    with pytest.raises(UserError, match=r"gs://no-such-bucket-x: bucket does not exist"):
        storage.write_text("gs://no-such-bucket-x/a.txt", "x")


def test_gcs_dataset_artifact_round_trip(gcs_bucket, fmnist_dir, tmp_path):
    uri = f"{gcs_bucket}/data/tiny"
    prepare_dataset(DataSettings(train_size=500, test_size=200), uri)
    assert "metadata.json" in storage.list_files(uri)
    ds = load_dataset(uri, cache_dir=tmp_path / "cache")
    assert ds.metadata["counts"] == {"train": 450, "val": 50, "test": 200}
    assert ds.x["train"].shape == (450, 28, 28)


def test_workspace_pushes_to_gcs_and_pulls_back(gcs_bucket, tmp_path):
    ws = storage.Workspace(f"{gcs_bucket}/trial-1", scratch=tmp_path / "a")
    ws.path("checkpoint").mkdir()
    ws.path("checkpoint", "state.json").write_text('{"epoch": 2}')
    ws.push("checkpoint")
    again = storage.Workspace(f"{gcs_bucket}/trial-1", scratch=tmp_path / "b")
    again.pull()
    assert again.path("checkpoint", "state.json").read_text() == '{"epoch": 2}'


def test_unwritable_local_output_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"cannot create folder"):
        storage.check_writable(str(blocker / "out"))
