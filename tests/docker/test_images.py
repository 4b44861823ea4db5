"""The trainer image, built here from Debian packages, running a trial and the whole pipeline as containers.

Needs a Docker engine: `images/start-engine.sh` (run by .ci/run) starts Debian's docker.io
as root. Where none can run, every test here is skipped with the reason.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from components.core.settings import KATIB_DEFAULT_METRICS_FILTER, TRAINER_IMAGE
from tests.conftest import REPO, TINY_TRANSFER, run_cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="session")
def engine():
    if shutil.which("docker") is None:
        pytest.skip("skipped: no docker client on PATH")
    info = _docker("info", check=False)
    if info.returncode != 0:
        pytest.skip(f"skipped: no Docker engine running ({info.stderr.strip().splitlines()[-1:]}); "
                    "images/start-engine.sh starts one as root")


@pytest.fixture(scope="session")
def trainer_image(engine, fmnist_dir):
    """Build (or reuse, through Docker's layer cache) the trainer image on the debootstrap base."""
    result = subprocess.run(["images/build.sh", "--base-image", "local", "--bake-data", str(fmnist_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=3600,
                            env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/bin", "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return TRAINER_IMAGE


def test_image_runs_as_a_non_root_user_with_no_credentials(trainer_image):
    config = json.loads(_docker("image", "inspect", trainer_image).stdout)[0]["Config"]
    assert config["User"] == "1000"
    assert config["Entrypoint"] == ["study"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert not {"GOOGLE_APPLICATION_CREDENTIALS", "AWS_SECRET_ACCESS_KEY"} & set(env)
    found = _docker("run", "--rm", "--entrypoint", "sh", trainer_image, "-c",
                    "find / -xdev \\( -name '*.json' -path '*cred*' -o -name 'key.json' \\) 2>/dev/null | head -5")
    assert found.stdout.strip() == ""


def test_a_trial_runs_inside_the_container_offline(trainer_image, tiny_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user (uid 1000) writes here
    result = _docker("run", "--rm", "--network", "none", "-v", f"{tiny_data}:/data:ro", "-v", f"{out}:/out",
                     trainer_image, "train", "--data", "/data", "--output", "/out/trial", "--epochs", "1",
                     "--batch-size", "64")
    pattern = re.compile(KATIB_DEFAULT_METRICS_FILTER)
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("epoch=")]
    assert {m.group(1) for m in pattern.finditer(line)} == {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}
    metrics = json.loads((out / "trial" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["params"]["total"] == 3_831_018


def test_baked_in_data_is_found_without_a_source(trainer_image, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    result = _docker("run", "--rm", "--network", "none", "-v", f"{out}:/out", trainer_image,
                     "data", "--out", "/out/data", "--train-size", "500", "--test-size", "100")
    assert "from debian:/usr/share/datasets/fashion-mnist" in result.stdout
    assert json.loads((out / "data" / "metadata.json").read_text())["counts"]["test"] == 100


def test_pipeline_runs_every_step_as_a_container(trainer_image, tmp_path):
    result = run_cli("run", "--runner", "docker", "--runs-dir", tmp_path, "--run-id", "in-docker",
                     "--set", "data.train_size=1000", "--set", "data.test_size=300", "--set", "train.epochs=1",
                     "--set", "sweeps.max_trials.optimizer=2", "--set", "sweeps.max_trials.activations=1",
                     "--set", "sweeps.max_trials.filters=1", *TINY_TRANSFER, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from pipelines.local_run import loop_iterations, pipeline_steps
    from pipelines.study_pipeline import study_pipeline

    # One container per task, and per iteration of the transfer loop's task.
    iterations = loop_iterations(study_pipeline)
    containers = sum(iterations.get(name, 1) for name in pipeline_steps(study_pipeline))
    kfp_log = (tmp_path / "in-docker" / "kfp-local.log").read_text()  # kfp.local's own log, kept whole
    assert containers >= 10 and kfp_log.count(f"Found image '{trainer_image}'") == containers
    report = (tmp_path / "in-docker" / "report" / "report.md").read_text()
    assert "| hand-written CNN | 3,831,018 |" in report and "## Question 2C: filters per conv layer" in report


# A stand-in for tensorflow/tensorflow:2.21.0-gpu, which cannot be pulled here: the local Debian
# base with TensorFlow installed for the system Python, where the real image has it.
GPU_STANDIN_BASE = "fmstudy/base-python-tensorflow:standin"
GPU_STANDIN_DOCKERFILE = """\
FROM fmstudy/base-python:bookworm
RUN python3 -m venv /tmp/bootstrap \\
 && /tmp/bootstrap/bin/pip install --quiet --no-cache-dir --target /usr/local/lib/python3.11/dist-packages \\
      tensorflow-cpu==2.21.0 \\
 && rm -rf /tmp/bootstrap
"""


def test_the_gpu_variant_uses_the_base_images_tensorflow_not_a_second_copy(trainer_image, tmp_path):
    (tmp_path / "Dockerfile").write_text(GPU_STANDIN_DOCKERFILE)
    _docker("build", "-q", "-t", GPU_STANDIN_BASE, str(tmp_path), timeout=1800)
    tag = "fmstudy/trainer-gpu:standin"
    result = subprocess.run(["images/build.sh", "--variant", "gpu", "--base-image", GPU_STANDIN_BASE, "--tag", tag],
                            cwd=REPO, capture_output=True, text=True, timeout=3600,
                            env={"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/bin", "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = _docker("run", "--rm", "--entrypoint", "python", tag, "-c",
                    "import importlib.metadata as m, tensorflow as tf; "
                    "print(tf.__file__); print(sorted({d.metadata['Name'] for d in m.distributions() if "
                    "str(d.locate_file('')).startswith('/opt/venv') and 'tensorflow' in d.metadata['Name'].lower()}))")
    tf_file, venv_tensorflows = found.stdout.strip().splitlines()[-2:]
    assert tf_file.startswith("/usr/local/lib/python3.11/dist-packages/tensorflow/"), tf_file
    assert venv_tensorflows == "[]", f"the venv holds its own TensorFlow: {venv_tensorflows}"
