"""Object storage through the `study` command, as a user or a Katib trial meets it."""

import json
import os
import time

import pytest

from components.core import storage
from tests.conftest import assert_user_error, free_port, run_cli


def test_s3_bucket_that_does_not_exist(s3_env):
    result = run_cli("data", "--out", "s3://no-such-bucket-here/data", env=s3_env)
    assert_user_error(result, "s3://no-such-bucket-here: bucket does not exist")


def test_s3_without_credentials(s3_server, no_aws_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run_cli("data", "--out", "s3://some-bucket/data", env=dict(os.environ))
    assert_user_error(result, "s3://some-bucket: no AWS credentials found")


@pytest.mark.parametrize("uri, bucket", [("gs://Bad_Bucket!/data", "Bad_Bucket!"),
                                         ("s3://Bad_Bucket!/data", "Bad_Bucket!")])
def test_invalid_bucket_name(uri, bucket, gcs_env, s3_env):
    assert_user_error(run_cli("data", "--out", uri, env={**gcs_env, **s3_env}), f"bucket name '{bucket}'")


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_unreachable_storage_host_is_one_line_within_the_deadline(scheme, no_aws_env, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "STUDY_STORAGE_TIMEOUT_S": "2", "STORAGE_EMULATOR_HOST": closed,
           "GOOGLE_CLOUD_PROJECT": "test-project", "AWS_ENDPOINT_URL_S3": closed,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    start = time.monotonic()
    result = run_cli("data", "--out", f"{scheme}://some-bucket/data", env=env, timeout=120)
    # The process also imports the project (a few seconds on a busy machine); storage gets 2 s of it.
    assert time.monotonic() - start < 60
    assert_user_error(result, f"cannot reach the storage service at {closed} within 2 s")


@pytest.mark.slow
def test_trial_on_s3_writes_resumes_and_leaves_no_scratch(tiny_data, s3_bucket, s3_env, tmp_path):
    """A Katib trial on MinIO: data and outputs by s3:// URI, resumed, and no study-ws-* left behind."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**s3_env, "TMPDIR": str(temp)}
    data = f"{s3_bucket}/data/tiny"
    storage.upload_dir(tiny_data, data)
    uri = f"{s3_bucket}/sweeps/trial-7"
    args = ["train", "--data", data, "--output", uri, "--batch-size", "64"]
    first = run_cli(*args, "--epochs", "1", env=env)
    assert first.returncode == 0, first.stderr
    assert {"metrics.json", "model.keras", "history.json", "checkpoint/state.json"} <= set(storage.list_files(uri))
    longer = run_cli(*args, "--epochs", "2", env=env)
    assert longer.returncode == 0, longer.stderr
    assert "resuming after epoch 1 of 2" in longer.stderr
    assert json.loads(storage.read_text(f"{uri}/metrics.json"))["epochs"] == 2
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("study-ws-")) == []
