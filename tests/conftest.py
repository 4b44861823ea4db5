"""Shared fixtures: the real Fashion-MNIST files, a tiny dataset artifact, a GCS emulator, an S3 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def fmnist_dir() -> Path:
    if not (FMNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"Fashion-MNIST is not in {FMNIST_DIR}: `make data` installs Debian's dataset-fashion-mnist")
    return FMNIST_DIR


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, fmnist_dir) -> str:
    """1,000 training (900 train / 100 val) and 300 test images: seconds per epoch."""
    from components.data import DataSettings, prepare_dataset

    out = tmp_path_factory.mktemp("data") / "tiny"
    prepare_dataset(DataSettings(train_size=1000, test_size=300, seed=7), str(out))
    return str(out)


# Question 3 on a few images and one epoch per phase: the flow, not the accuracy.
TINY_TRANSFER = [arg for setting in (
    "transfer.target.images_per_class=30", "transfer.frozen_epochs=1", "transfer.fine_tune_epochs=1",
    "transfer.source.epochs=1", "transfer.bases.mobilenet_v2.input_size=32",
    "transfer.bases.mobilenet_v2.frozen_epochs=1", "transfer.bases.mobilenet_v2.fine_tune_epochs=1",
    "transfer.bases.mobilenet_v2.source_epochs=1",
    "transfer.bases.inception_v3.source_images=200", "transfer.bases.inception_v3.source_epochs=1",
) for arg in ("--set", setting)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def serve_on_loopback(executable: str, *args: str):
    """Run a venv console script as a server on 127.0.0.1 at a free port ({port} in ``args``); yield its URL."""
    port = free_port()
    exe = Path(sys.executable).with_name(executable)
    proc = subprocess.Popen([str(exe), *(a.format(port=port) for a in args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def gcs_emulator():
    """gcp-storage-emulator on 127.0.0.1 at a free port; yields its host:port."""
    yield from serve_on_loopback("gcp-storage-emulator", "start", "--host", "127.0.0.1", "--port", "{port}",
                                 "--in-memory", "-q")


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch) -> dict:
    """Point this process (and child processes given this env) at the emulator."""
    from components.core import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    storage._client.cache_clear()
    yield dict(os.environ)
    storage._client.cache_clear()


@pytest.fixture
def gcs_bucket(gcs_env) -> str:
    from components.core import storage

    name = f"bucket-{uuid.uuid4().hex[:10]}"
    storage._client().create_bucket(name)
    return f"gs://{name}"


# Every AWS setting boto3 reads that could point a test at a real account or another endpoint.
AWS_ENV = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
           "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
           "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3-API server on 127.0.0.1 at a free port; yields its endpoint URL."""
    yield from serve_on_loopback("moto_server", "-H", "127.0.0.1", "-p", "{port}")


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    """No AWS setting from the machine: no credentials, no ~/.aws files, no instance metadata."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # Off a cloud VM boto3 would wait for 169.254.169.254 before saying there are no credentials.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_env(s3_server, no_aws_env, monkeypatch) -> dict:
    """Point this process (and child processes given this env) at the S3 server, with its keys."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return dict(os.environ)


@pytest.fixture
def s3_bucket(s3_env) -> str:
    """A new, empty bucket, made with boto3 itself (not with the code under test)."""
    import boto3

    name = f"bucket-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket=name)
    return f"s3://{name}"


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The `study` command in a fresh process, as a user or a Katib trial would run it."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


def die_at_upload(monkeypatch, n: int) -> list[str]:
    """Make the ``n``-th storage.upload_file raise ConnectionError (a preempted node); the targets tried."""
    from components.core import storage

    real_upload, uploads = storage.upload_file, []

    def dying_upload(local, target):
        uploads.append(target)
        if len(uploads) == n:
            raise ConnectionError("node preempted")
        real_upload(local, target)

    monkeypatch.setattr(storage, "upload_file", dying_upload)
    return uploads


def last_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_user_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    """Bad input: exit status 2, no traceback, and a last line `error: ...` containing ``pattern``."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    line = last_error_line(result.stderr)
    assert line.startswith("error: "), line
    assert pattern in line, line
