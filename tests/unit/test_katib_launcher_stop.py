"""What the launcher does with its Experiment when the launch ends without a winner: on timeout, on Katib's
Failed, and on SIGTERM (what a pod gets when its KFP run is cancelled), it deletes its own Experiment or keeps
it, as configured, and says which. It never deletes another object of the same name: the delete carries a
DeleteOptions uid precondition, which the API server refuses with 409 Conflict when the uid differs
(kubernetes/website content/en/docs/reference/kubernetes-api/common-definitions/delete-options.md).

Against the local API server of tests/fixtures/fake_k8s.py, through the real kubernetes client; the SIGTERM
test runs `study katib launch` as its own process and signals it once the server has seen its create and
its watch, not after a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.core.errors import UserError
from katib.backends.cluster import ExperimentFailed, LaunchTimeout, launch_experiment
from katib.validate import load_experiment
from tests.fixtures.fake_k8s import FakeKubernetes, failing, never_finishing

REPO = Path(__file__).resolve().parents[2]
OPTIMIZER_YAML = REPO / "katib" / "experiments" / "optimizer.yaml"
NAME = "fmstudy-optimizer"


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


@pytest.fixture
def experiment() -> dict:
    return load_experiment(str(OPTIMIZER_YAML))


def launch(fake, experiment, lines, **options):
    return launch_experiment(experiment, api_client=fake.api_client(), log=lines.append,
                             **{"timeout_s": 10.0, "poll_s": 0.02, **options})


def delete_uids(fake) -> list[str | None]:
    return [((r.body or {}).get("preconditions") or {}).get("uid") for r in fake.calls("DELETE")]


def test_on_a_timeout_it_deletes_its_own_experiment_and_says_so(experiment):
    lines: list[str] = []
    with FakeKubernetes(steps=never_finishing(NAME)) as fake, pytest.raises(LaunchTimeout) as caught:
        launch(fake, experiment, lines, timeout_s=0.3, on_stop="delete")
    assert fake.experiments == {}
    (uid,) = delete_uids(fake)
    assert uid == "00000000-0000-4000-8000-000000000001"  # the uid the server gave the one it created
    assert "it was deleted (on_stop=delete)" in str(caught.value)
    assert f"katib: deleting experiment fmstudy/{NAME} and its trials: it ran past the timeout" in lines


def test_when_katib_fails_it_deletes_or_keeps_as_configured(experiment):
    for on_stop, left in (("delete", 0), ("keep", 1)):
        lines: list[str] = []
        with FakeKubernetes(steps=failing(NAME)) as fake, pytest.raises(ExperimentFailed):
            launch(fake, experiment, lines, on_stop=on_stop)
        assert len(fake.experiments) == left
        said = [line for line in lines if "failed" in line and ("deleting" in line or "keeping" in line)]
        assert len(said) == 1 and ("deleting" if on_stop == "delete" else "on_stop=keep") in said[0]


def test_a_namesake_created_meanwhile_is_never_deleted(experiment):
    """Someone replaced the Experiment (same name, another uid) while this launch waited: it stays."""
    lines: list[str] = []
    with FakeKubernetes(steps=never_finishing(NAME)) as fake:
        def log(line: str) -> None:
            lines.append(line)
            if line.startswith("katib: created"):  # the named instant: just after our create
                fake.experiments[("fmstudy", NAME)].obj["metadata"]["uid"] = "another-runs-uid"

        with pytest.raises(LaunchTimeout) as caught:
            launch_experiment(experiment, api_client=fake.api_client(), log=log, timeout_s=0.3, poll_s=0.02,
                              on_stop="delete")
        assert ("fmstudy", NAME) in fake.experiments  # still there
        assert delete_uids(fake) and delete_uids(fake)[0] != "another-runs-uid"
    assert f"katib: not deleting experiment fmstudy/{NAME}: it is no longer the one this launch created" in lines
    assert "it keeps running" in str(caught.value)


def test_an_unknown_on_stop_is_one_clear_error(experiment):
    with pytest.raises(UserError, match="on_stop 'stop': expected one of keep, delete"):
        launch_experiment(experiment, on_stop="stop")


def kubeconfig_for(fake, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "t"}}]}))
    return path


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("on_stop", ["delete", "keep"])
def test_sigterm_stops_the_launch_and_cleans_up_as_configured(tmp_path, on_stop):
    with FakeKubernetes(steps=never_finishing(NAME)) as fake:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig_for(fake, tmp_path / "kubeconfig"))}
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "katib", "launch", str(OPTIMIZER_YAML),
                                 "--on-stop", on_stop, "--timeout", "1h"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The dangerous instant: the Experiment exists and the launcher is waiting on it.
            wait_until(lambda: fake.calls("POST") and fake.calls("GET", watch=True), "the create and the watch")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 143, err
        error = err.strip().splitlines()[-1]
        assert error.startswith(f"error: experiment fmstudy/{NAME}: the launch was stopped (received SIGTERM)")
        if on_stop == "delete":
            assert fake.experiments == {} and len(delete_uids(fake)) == 1
            assert "was deleted with its trials" in error
            assert f"katib: deleted experiment fmstudy/{NAME}" in out
        else:
            assert ("fmstudy", NAME) in fake.experiments and fake.calls("DELETE") == []
            assert "was kept (on_stop=keep)" in error
