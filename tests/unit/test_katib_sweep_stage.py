"""katib.sweep.run_stage: one path for both sweep backends, and the same summary from each, failed trials included.

The local backend runs the stage's real Experiment with its trial command swapped for a tiny script
(one optimizer's trial exits 1); the cluster backend runs it against tests/fixtures/fake_k8s.py, which
serves a Failed Trial as Katib's controller writes it. Either way the failed trial is in
summary["trials"] with its state, and the report renders it.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from components.profile_check import load_profile
from components.report.document import sweep_sections
from katib.backends.base import Outcome, SweepBackend, TrialRow
from katib.backends.local_backend import LocalBackend
from katib.sweep import EXPERIMENT_FILE, SUMMARY_FILE, SweepFailed, launch_sweep_stage, run_stage, stage_experiment
from tests.fixtures.fake_k8s import FakeKubernetes, katib_trial, succeeding

NAME = "fmstudy-optimizer"
# What the swapped-in trial prints: Katib's StdOut format, as `study train` prints it.
TRIAL_SCRIPT = textwrap.dedent("""
    import sys
    optimizer = sys.argv[sys.argv.index("--optimizer") + 1]
    if optimizer == "Ftrl":
        sys.exit("simulated failure")  # exit status 1
    value = {"Nadam": 0.93, "Adam": 0.92}.get(optimizer, 0.8)
    print(f"epoch=1 accuracy={value} loss=0.3 val_accuracy={value} val_loss=0.3")
""")


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def local_stage(tmp_path: Path) -> tuple[dict, dict[str, str]]:
    """The optimizer stage's Experiment, its trials running TRIAL_SCRIPT instead of `study train`."""
    script = tmp_path / "trial.py"
    script.write_text(TRIAL_SCRIPT)
    experiment, fixed = stage_experiment("optimizer", str(tmp_path / "data"), str(tmp_path / "sweep" / "outputs"),
                                         load_profile("smoke")["sweeps"], {}, parallel_trials=1)
    (container,) = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["study", "train"]
    container["command"] = [sys.executable, str(script), *container["command"][2:]]
    return experiment, fixed


def test_a_local_trial_that_exits_1_is_in_the_summary_with_its_state(tmp_path):
    experiment, fixed = local_stage(tmp_path)
    out = tmp_path / "sweep"
    summary = run_stage("optimizer", LocalBackend(out), experiment, fixed, experiment_uri=str(out / EXPERIMENT_FILE),
                        summary_uri=str(out / SUMMARY_FILE), log=lambda line: None)

    rows = {t["combination"][0]: t for t in summary["trials"]}
    assert len(rows) == 8  # the whole grid ran, the failed trial included
    assert (rows["Ftrl"]["state"], rows["Ftrl"]["reason"], rows["Ftrl"]["val_accuracy"]) == ("Failed", "TrialFailed",
                                                                                            None)
    assert rows["Nadam"]["state"] == "Succeeded" and rows["Nadam"]["val_accuracy"] == 0.93
    assert summary["best"]["optimizer"] == "Nadam" and summary["condition"] == "Succeeded"
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary
    assert (out / EXPERIMENT_FILE).exists()
    (section,) = sweep_sections({"optimizer": str(out)})
    assert section.table[1] == ["Nadam", "93.00%", "Succeeded", "93.05% (its best)"]
    assert section.table[-1] == ["Ftrl", "—", "Failed (TrialFailed)", "—"]


def test_a_failed_katib_trial_is_in_the_summary_with_its_state(tmp_path):
    trials = [katib_trial(NAME, 1, {"optimizer": "Nadam"}, objective=("val_accuracy", 0.9305)),
              katib_trial(NAME, 2, {"optimizer": "Ftrl"}, "Failed", objective=None)]
    out = tmp_path / "sweep"
    with FakeKubernetes(steps=succeeding(NAME, {"optimizer": "Nadam"}), trials={NAME: trials}) as fake:
        summary = launch_sweep_stage("optimizer", str(tmp_path / "data"), str(out), load_profile("smoke")["sweeps"],
                                     api_client=fake.api_client(), poll_s=0.02, log=lambda line: None)

    assert [(t["name"], t["combination"], t["state"], t["val_accuracy"]) for t in summary["trials"]] == [
        (trials[0]["metadata"]["name"], ["Nadam"], "Succeeded", 0.9305),
        (trials[1]["metadata"]["name"], ["Ftrl"], "Failed", None)]
    assert summary["trials"][1]["reason"] == "TrialFailed. Job reason: BackoffLimitExceeded"
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary
    (section,) = sweep_sections({"optimizer": str(out)})
    assert section.table[-1] == ["Ftrl", "—", "Failed (TrialFailed. Job reason: BackoffLimitExceeded)", "—"]


class ScriptedBackend(SweepBackend):
    """A backend that returns a given Outcome, to see what run_stage itself does."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        self.claimed = False

    def claim(self):
        backend = self

        class Claim:
            def __enter__(self):
                backend.claimed = True

            def __exit__(self, *exc):
                backend.claimed = False

        return Claim()

    def run(self, experiment, *, log=print):
        assert self.claimed, "run_stage runs the Experiment under the backend's claim"
        return self.outcome


def test_without_a_winner_run_stage_writes_the_experiment_but_no_summary(tmp_path):
    experiment, fixed = local_stage(tmp_path)
    failed = [TrialRow(f"t{i}", "Failed", "TrialFailed", {"optimizer": "SGD"}, None) for i in range(3)]
    backend = ScriptedBackend(Outcome("fmstudy-optimizer", "Failed", "ExperimentFailed", "max failed count",
                                      best_trial=None, trials=failed, where="here"))
    with pytest.raises(SweepFailed, match=r"no trial produced val_accuracy \(Failed: ExperimentFailed; see here\)"):
        run_stage("optimizer", backend, experiment, fixed, experiment_uri=str(tmp_path / EXPERIMENT_FILE),
                  summary_uri=str(tmp_path / SUMMARY_FILE))
    assert (tmp_path / EXPERIMENT_FILE).exists() and not (tmp_path / SUMMARY_FILE).exists()
    assert not backend.claimed


HISTORY_SCRIPT = textwrap.dedent("""
    import json, pathlib, sys
    optimizer = sys.argv[sys.argv.index("--optimizer") + 1]
    output = pathlib.Path(sys.argv[sys.argv.index("--output") + 1])
    if optimizer == "Ftrl":
        sys.exit("simulated failure")  # exit status 1, no metrics.json
    value = {"Nadam": 0.93, "Adam": 0.92}.get(optimizer, 0.8)
    output.mkdir(parents=True, exist_ok=True)
    if optimizer == "SGD":
        (output / "metrics.json").write_text("not json")  # an output that is not the trial runner's
    else:
        images = {"training_images": 2700} if optimizer == "Nadam" else {}
        (output / "metrics.json").write_text(json.dumps({"history": {"val_accuracy": [value - 0.1, value]}, **images}))
    print(f"epoch=1 accuracy={value} loss=0.3 val_accuracy={value - 0.1} val_loss=0.3")
    print(f"epoch=2 accuracy={value} loss=0.3 val_accuracy={value} val_loss=0.3")
""")


def test_the_summary_carries_each_trials_history_for_the_learning_curves(tmp_path):
    """Issue #16's learning curves: each row's objective per epoch, read from the metrics.json the trial wrote
    under the stage's trials root; a trial that wrote none, or something else, has no history."""
    experiment, fixed = local_stage(tmp_path)
    (tmp_path / "trial.py").write_text(HISTORY_SCRIPT)
    out = tmp_path / "sweep"
    summary = run_stage("optimizer", LocalBackend(out), experiment, fixed, experiment_uri=str(out / EXPERIMENT_FILE),
                        summary_uri=str(out / SUMMARY_FILE), trials_root=str(out / "outputs"), log=lambda line: None)
    rows = {t["combination"][0]: t for t in summary["trials"]}
    assert rows["Nadam"]["history"] == pytest.approx([0.83, 0.93])
    assert rows["Adam"]["history"] == pytest.approx([0.82, 0.92])
    assert "history" not in rows["Ftrl"] and "history" not in rows["SGD"]
    # What a trial trained on, where its metrics.json says (components/cnn/train.py): the report's scale note.
    assert rows["Nadam"]["training_images"] == 2700
    assert "training_images" not in rows["Adam"] and "training_images" not in rows["Ftrl"]
    (section,) = sweep_sections({"optimizer": str(out)})
    assert "sweep_optimizer_curves.png" in section.figures
