"""s3:// storage against the real boto3 client and moto's standalone S3-API server (as MinIO speaks it)."""

import json

import boto3
import pytest

from components.core import storage
from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.data import DataSettings, prepare_dataset


def _objects(bucket_uri: str) -> list[str]:
    """What the server holds, asked with boto3 itself rather than with the code under test."""
    client = boto3.client("s3")
    listing = client.list_objects_v2(Bucket=bucket_uri.removeprefix("s3://"))
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_s3_round_trip_of_files_and_folders(s3_bucket, tmp_path):
    uri = f"{s3_bucket}/run/metrics.json"
    assert not storage.exists(uri)
    storage.write_text(uri, json.dumps({"val_accuracy": 0.93}))
    assert storage.exists(uri)
    assert json.loads(storage.read_text(uri)) == {"val_accuracy": 0.93}

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("1")
    # Over boto3's 8 MiB multipart threshold: the upload goes in parts, and still appears whole.
    big = bytes(range(256)) * (40 * 1024)
    (src / "sub" / "two.bin").write_bytes(big)
    storage.upload_dir(src, f"{s3_bucket}/dir")
    assert storage.list_files(f"{s3_bucket}/dir") == ["one.txt", "sub/two.bin"]
    storage.download_dir(f"{s3_bucket}/dir", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "two.bin").read_bytes() == big
    assert storage.read_bytes(f"{s3_bucket}/dir/sub/two.bin") == big
    assert storage.download_file(f"{s3_bucket}/dir/one.txt", tmp_path / "one.txt").read_text() == "1"


def test_s3_listing_keeps_to_its_prefix(s3_bucket):
    for key in ("dir/a.txt", "dir/deep/b.txt", "dir2/c.txt", "dirt.txt", "top.txt"):
        storage.write_text(f"{s3_bucket}/{key}", key)
    assert storage.list_files(f"{s3_bucket}/dir") == ["a.txt", "deep/b.txt"]
    assert storage.list_files(f"{s3_bucket}/dir/") == ["a.txt", "deep/b.txt"]
    assert storage.list_files(s3_bucket) == ["dir/a.txt", "dir/deep/b.txt", "dir2/c.txt", "dirt.txt", "top.txt"]
    assert storage.list_files(f"{s3_bucket}/nothing-here") == []
    assert storage.join(s3_bucket, "dir/", "/a.txt") == f"{s3_bucket}/dir/a.txt"


def test_s3_dataset_is_written_marker_last(s3_bucket, fmnist_dir, monkeypatch):
    """The real data step to s3://, watched: metadata.json (the marker) is the last object written."""
    order = []
    real_upload, real_write = storage.upload_file, storage.write_text
    monkeypatch.setattr(storage, "upload_file", lambda local, uri: (order.append(uri), real_upload(local, uri)))
    monkeypatch.setattr(storage, "write_text", lambda uri, text: (order.append(uri), real_write(uri, text)))
    uri = f"{s3_bucket}/data/tiny"
    prepare_dataset(DataSettings(train_size=500, test_size=200), uri)
    assert order[-1] == f"{uri}/metadata.json" and len(order) == 7
    assert _objects(s3_bucket) == sorted(o.removeprefix(f"{s3_bucket}/") for o in order)
    ds = load_dataset(uri)
    assert ds.metadata["counts"] == {"train": 450, "val": 50, "test": 200}


def test_s3_missing_object_and_missing_bucket_are_one_line_errors(s3_bucket, tmp_path):
    with pytest.raises(UserError, match=r"no such object"):
        storage.read_bytes(f"{s3_bucket}/nope.json")
    with pytest.raises(UserError, match=r"no such object"):
        storage.download_file(f"{s3_bucket}/nope.json", tmp_path / "nope.json")
    assert not (tmp_path / "nope.json").exists()
    missing = "s3://no-such-bucket-x"
    for call in (lambda: storage.write_text(f"{missing}/a.txt", "x"), lambda: storage.read_bytes(f"{missing}/a"),
                 lambda: storage.exists(f"{missing}/a"), lambda: storage.list_files(f"{missing}/a"),
                 lambda: storage.check_writable(f"{missing}/out"),
                 lambda: storage.upload_file(__file__, f"{missing}/f.py")):
        with pytest.raises(UserError, match=r"^s3://no-such-bucket-x: bucket does not exist$"):
            call()


def test_s3_without_credentials_is_one_line(s3_server, no_aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    with pytest.raises(UserError, match=r"^s3://some-bucket: no AWS credentials found: set AWS_ACCESS_KEY_ID"):
        storage.write_text("s3://some-bucket/a.txt", "x")


def test_s3_workspace_pushes_and_pulls_back(s3_bucket, tmp_path):
    ws = storage.Workspace(f"{s3_bucket}/trial-1", scratch=tmp_path / "a")
    assert ws.remote
    ws.path("checkpoint").mkdir()
    ws.path("checkpoint", "state.json").write_text('{"epoch": 2}')
    ws.push("checkpoint")
    again = storage.Workspace(f"{s3_bucket}/trial-1", scratch=tmp_path / "b")
    again.pull()
    assert again.path("checkpoint", "state.json").read_text() == '{"epoch": 2}'


def test_every_remote_scheme_is_remote():
    assert storage.is_remote("s3://b/x") and storage.is_remote("gs://b/x") and not storage.is_remote("/tmp/x")
    # Callers written for gs:// ask is_gcs whether a URI is remote; s3:// must take the same path there.
    assert storage.is_gcs("s3://b/x")


def test_data_step_reads_its_idx_source_from_s3(s3_bucket, fmnist_dir, tmp_path):
    """A caller that asks is_gcs (components/data.py) takes its remote path for s3:// too."""
    source = f"{s3_bucket}/raw"
    for path in sorted(fmnist_dir.glob("*-ubyte.gz")):
        storage.upload_file(path, f"{source}/{path.name}")
    metadata = prepare_dataset(DataSettings(source=source, train_size=500, test_size=200), str(tmp_path / "d"))
    assert metadata["counts"] == {"train": 450, "val": 50, "test": 200}
    with pytest.raises(UserError, match=r"s3://.*/nothing: missing train-images-idx3-ubyte"):
        prepare_dataset(DataSettings(source=f"{s3_bucket}/nothing"), str(tmp_path / "e"))
