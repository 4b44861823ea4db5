"""A retried training step resumes from its checkpoint instead of epoch 0.

On open-source KFP an output artifact's local folder (/gcs/..., /minio/...) is an emptyDir the launcher
uploads only when the step succeeds (kubeflow/pipelines backend/src/v2/component/launcher_v2.go: execute,
then uploadOutputArtifacts), so a retried pod finds nothing there. The step therefore trains under the
pipeline's work_root, keyed by the run id and task name, which a retry keeps.

Each attempt is a kfp.local run of the real step (tests/fixtures/trials/run_train_step.py) with its own,
empty pipeline root. The first is killed once its checkpoint exists under the work root (the named
instant), not after a sleep.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
SCRIPT = REPO / "tests" / "fixtures" / "trials" / "run_train_step.py"


def attempt(root, data, work) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(root), data, str(work)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_a_killed_training_step_retried_in_a_fresh_pod_resumes_from_the_work_root(tiny_data, tmp_path):
    work = tmp_path / "work"
    state = work / "0b7e3f52-retry-test" / "train-cnn" / "model" / "checkpoint" / "state.json"
    first = attempt(tmp_path / "attempt-1", tiny_data, work)
    deadline = time.monotonic() + 600
    while not state.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the pod dies: the step's executor process and all it started
    first.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 4, "the first attempt should have been killed part-way"

    second = attempt(tmp_path / "attempt-2", tiny_data, work)
    out, _ = second.communicate(timeout=900)
    assert second.returncode == 0, out[-3000:]
    assert f"resuming after epoch {done} of 4" in out
    model_dir = out.strip().splitlines()[-1].removeprefix("model: ")
    assert model_dir.startswith(str(tmp_path / "attempt-2"))
    metrics = json.loads((tmp_path / model_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and len(metrics["history"]["val_accuracy"]) == 4
