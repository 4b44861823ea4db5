"""A sweep stage on 'the cluster': the launcher against a local API server, the sweep's files in the GCS emulator.

The per-trial table comes from Katib's Trials (served by tests/fixtures/fake_k8s.py as Katib's
controller writes them), so failed trials are in it with their state and reason.
"""

import json

import pytest
import yaml

from components.core import storage
from components.profile_check import load_profile
from components.report.document import sweep_sections
from katib.sweep import SweepFailed, launch_sweep_stage
from tests.fixtures.fake_k8s import FakeKubernetes, failing, katib_trial, succeeding

NAME = "fmstudy-optimizer"


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def test_cluster_sweep_summary_comes_from_katibs_experiment_and_trials(gcs_bucket):
    steps = succeeding(NAME, {"optimizer": "Nadam"}, ("val_accuracy", 0.9305))
    best_name = steps[-1]["currentOptimalTrial"]["bestTrialName"]
    out = f"{gcs_bucket}/pipeline/run-1/sweep-a"
    trials = [katib_trial(NAME, 1, {"optimizer": "Nadam"}, objective=("val_accuracy", 0.9305)),
              katib_trial(NAME, 2, {"optimizer": "Ftrl"}, objective=("val_accuracy", 0.1)),
              katib_trial(NAME, 3, {"optimizer": "Adam"}, objective=("val_accuracy", 0.9243))]
    settings = load_profile("smoke")["sweeps"]
    with FakeKubernetes(steps=steps, trials={NAME: trials}) as fake:
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
    assert section.table[1] == ["Nadam", "93.05%", "Succeeded", "93.05% (its best)"]


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


def test_failed_trials_are_in_the_summary_and_the_report_with_their_state(gcs_bucket):
    steps = succeeding(NAME, {"optimizer": "Nadam"}, ("val_accuracy", 0.9305))
    trials = [katib_trial(NAME, 1, {"optimizer": "Nadam"}, objective=("val_accuracy", 0.9305)),
              katib_trial(NAME, 2, {"optimizer": "Ftrl"}, "Failed", objective=None),
              katib_trial(NAME, 3, {"optimizer": "SGD"}, "MetricsUnavailable", objective=None)]
    out = f"{gcs_bucket}/pipeline/run-2/sweep-a"
    with FakeKubernetes(steps=steps, trials={NAME: trials}) as fake:
        summary = launch_sweep_stage("optimizer", f"{gcs_bucket}/data", out, load_profile("smoke")["sweeps"],
                                     api_client=fake.api_client(), poll_s=0.02, log=lambda line: None)
        (listed,) = [r for r in fake.calls("GET") if r.path.endswith("/trials")]
    assert listed.query["labelSelector"] == f"katib.kubeflow.org/experiment={NAME}"
    rows = {t["combination"][0]: (t["state"], t["reason"], t["val_accuracy"]) for t in summary["trials"]}
    assert rows == {"Nadam": ("Succeeded", "TrialSucceeded", 0.9305),
                    "Ftrl": ("Failed", "TrialFailed. Job reason: BackoffLimitExceeded", None),
                    "SGD": ("MetricsUnavailable", "MetricsUnavailable", None)}
    assert summary["best"]["optimizer"] == "Nadam" and summary["val_accuracy"] == 0.9305
    (section,) = sweep_sections({"optimizer": out})
    assert section.table[1] == ["Nadam", "93.05%", "Succeeded", "93.05% (its best)"]
    assert ["Ftrl", "—", "Failed (TrialFailed. Job reason: BackoffLimitExceeded)", "—"] in section.table
    assert ["SGD", "—", "MetricsUnavailable (MetricsUnavailable)", "—"] in section.table
