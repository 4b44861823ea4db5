"""A sweep stage on 'the cluster': the launcher against a local API server, trial outputs in the GCS emulator."""

import json

import pytest
import yaml

from components.core import storage
from components.profile_check import load_profile
from components.report.document import sweep_sections
from katib.sweep import SweepFailed, launch_sweep_stage
from tests.fixtures.fake_k8s import FakeKubernetes, failing, succeeding


def write_trial(output_root: str, name: str, optimizer: str, best: float) -> None:
    """What a trial Job's `study train` leaves behind (its metrics.json, written last)."""
    metrics = {"config": {"optimizer": optimizer, "activations": ["relu"] * 4, "filters": [32, 32, 64, 64]},
               "best": {"epoch": 3, "val_accuracy": best}}
    storage.write_text(f"{output_root}/{name}/metrics.json", json.dumps(metrics))


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def test_cluster_sweep_summary_comes_from_katib_and_the_trials_outputs(gcs_bucket):
    steps = succeeding("fmstudy-optimizer", {"optimizer": "Nadam"}, ("val_accuracy", 0.9305))
    best_name = steps[-1]["currentOptimalTrial"]["bestTrialName"]
    out = f"{gcs_bucket}/pipeline/run-1/sweep-a"
    write_trial(f"{out}/outputs", best_name, "Nadam", 0.9305)
    write_trial(f"{out}/outputs", "fmstudy-optimizer-0000beef", "Ftrl", 0.1)
    write_trial(f"{out}/outputs", "fmstudy-optimizer-0000cafe", "Adam", 0.9243)
    settings = load_profile("smoke")["sweeps"]
    with FakeKubernetes(steps=steps) as fake:
        summary = launch_sweep_stage("optimizer", f"{gcs_bucket}/data", out, settings, fixed={},
                                     api_client=fake.api_client(), poll_s=0.02, log=lambda line: None)
        posted = fake.requests[0].body
    # The Experiment Katib received: trials read and write by gs:// URI, not this pod's files.
    command = posted["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"]
    args = dict(zip(command[2::2], command[3::2]))
    assert args["--data"] == f"{gcs_bucket}/data"
    assert args["--output"] == f"{out}/outputs/${{trialParameters.trialName}}"
    assert yaml.safe_load(storage.read_text(f"{out}/experiment.yaml"))["spec"] == posted["spec"]

    assert summary["best"]["optimizer"] == "Nadam" and summary["val_accuracy"] == 0.9305
    assert summary["best_trial"] == best_name and summary["condition"] == "Succeeded"
    assert sorted((t["combination"][0], t["val_accuracy"]) for t in summary["trials"]) == [
        ("Adam", 0.9243), ("Ftrl", 0.1), ("Nadam", 0.9305)]
    assert json.loads(storage.read_text(f"{out}/summary.json")) == summary
    (section,) = sweep_sections({"optimizer": out})
    assert section.table[1] == ["Nadam", "93.05%", "Succeeded"]


def test_cluster_sweep_that_katib_failed_is_one_line_with_katibs_reason(gcs_bucket):
    steps = failing("fmstudy-optimizer", message="Experiment has failed because max failed count has reached")
    with FakeKubernetes(steps=steps) as fake, pytest.raises(Exception) as err:
        launch_sweep_stage("optimizer", f"{gcs_bucket}/data", f"{gcs_bucket}/s", load_profile("smoke")["sweeps"],
                           api_client=fake.api_client(), poll_s=0.02, log=lambda line: None)
    assert "max failed count has reached" in str(err.value) and "\n" not in str(err.value)
    assert not storage.exists(f"{gcs_bucket}/s/summary.json")


def test_sweep_without_any_objective_has_no_winner(gcs_bucket):
    steps = succeeding("fmstudy-optimizer", {"optimizer": "Nadam"})
    with FakeKubernetes(steps=steps) as fake, pytest.raises(SweepFailed, match="no trial produced val_accuracy"):
        launch_sweep_stage("optimizer", f"{gcs_bucket}/data", f"{gcs_bucket}/empty", load_profile("smoke")["sweeps"],
                           api_client=fake.api_client(), poll_s=0.02, log=lambda line: None)
