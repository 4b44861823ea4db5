"""Shared fixtures: the real Fashion-MNIST files, a tiny dataset artifact, a GCS emulator."""

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


@pytest.fixture(scope="session")
def gcs_emulator():
    """gcp-storage-emulator on 127.0.0.1 at a free port; yields its host:port."""
    port = free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen([str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch) -> dict:
    """Point this process (and child processes given this env) at the emulator."""
    from components import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    storage._client.cache_clear()
    yield dict(os.environ)
    storage._client.cache_clear()


@pytest.fixture
def gcs_bucket(gcs_env) -> str:
    from components import storage

    name = f"bucket-{uuid.uuid4().hex[:10]}"
    storage._client().create_bucket(name)
    return f"gs://{name}"


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The `study` command in a fresh process, as a user or a Katib trial would run it."""
    return subprocess.run([sys.executable, "-m", "components.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


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
