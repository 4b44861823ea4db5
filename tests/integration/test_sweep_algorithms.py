"""The study's sweeps with Katib's hyperband and pbt (`sweeps.algorithm`), run for real on this machine.

Each runs the one path `study sweep stage` and the pipeline take (``katib.sweep.run_sweep_stage``) with
the real trial, on a tiny dataset and one or two epochs. What the searches themselves do (brackets,
exploit and explore) is checked against Katib's services in the unit tests of the local backend; here
the study's Experiment has to work with them: hyperband's epochs reach `study train`, and each pbt
trial trains on from its parent's weights in the folder Katib mounts at ``suggestion_trial_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.core.profiles import read_profile
from katib.sweep import run_sweep_stage

pytestmark = pytest.mark.slow


def sweeps(*overrides: str) -> dict:
    return read_profile("smoke", ["sweeps.train_images=300", "sweeps.local_parallel_trials=2", *overrides])["sweeps"]


def test_hyperband_gives_each_trial_its_budget_of_epochs_and_promotes_the_best(tiny_data: str, tmp_path: Path):
    # r_l = 2 epochs, eta = 2: s_max = 1, two brackets (Katib's hyperband service.py, as the unit tests
    # follow it). Bracket s = 1 starts as many trials as may run (2: GetSuggestions' "hack" n =
    # current_request_number) at int(2 * 2**-1) = 1 epoch, then promotes ceil(2 / 2) = 1, the better, to
    # int(1 * 2**1) = 2 epochs. Bracket s = 0 starts as many as may start then, 1 (the promoted trial
    # holds the other slot), at 2 epochs; then s < 0 and the service gives no more.
    summary = run_sweep_stage("activations", tiny_data, tmp_path, sweeps(
        "sweeps.algorithm=hyperband", "sweeps.hyperband_eta=2", "sweeps.epochs=2", "sweeps.max_trials.activations=9"))
    assert summary["condition"] == "Succeeded"
    trials = summary["trials"]
    experiment = (tmp_path / "experiment.yaml").read_text()
    assert "--epochs\n" in experiment.replace("- ", "") and "${trialParameters.epochs}" in experiment
    budgets = [len(t["history"]) for t in trials]  # each trial's metrics.json: one entry per epoch it trained
    assert budgets == [1, 1, 2, 2]
    best_of_rung = max(trials[:2], key=lambda t: t["val_accuracy"])
    assert trials[2]["combination"] == best_of_rung["combination"]  # promoted with its settings
    # The winner passes on its activations only: epochs are the search's budget, not a setting.
    assert set(summary["best"]) == {"optimizer", "activations", "filters"}


def test_pbt_trials_train_on_from_their_parents_weights(tiny_data: str, tmp_path: Path):
    # Population 5, 9 trials, 2 at a time: when the last trials are asked for, more than 5 have ended,
    # so they are the next generation, each starting in a copy of its parent's folder.
    summary = run_sweep_stage("activations", tiny_data, tmp_path, sweeps(
        "sweeps.algorithm=pbt", "sweeps.pbt_population=5", "sweeps.max_trials.activations=9"))
    assert summary["condition"] == "Succeeded"
    assert len(summary["trials"]) == 9
    assert "FromVolume" in (tmp_path / "experiment.yaml").read_text()
    records = {t["name"]: json.loads((tmp_path / "suggestion" / "fmstudy-activations" / t["name"] / "pbt.json")
                                     .read_text()) for t in summary["trials"]}
    # Each trial left its weights and record in its own folder (a record names the trial by its output).
    assert all(r["last_trial"] == str(tmp_path / "outputs" / name) and r["epochs"] == 1
               for name, r in records.items())
    starts = [records[t["name"]]["start_epochs"] for t in summary["trials"]]
    assert starts[:5] == [0] * 5  # the first generation starts from scratch
    assert starts[-1] >= 1  # a child: its lineage trained before it
    child = summary["trials"][-1]["name"]
    assert "starting from the parent trial's weights" in (tmp_path / "trials" / child / "stdout.log").read_text()
    assert set(summary["best"]) == {"optimizer", "activations", "filters"}


def test_hyperband_that_cannot_start_its_first_rung_is_refused_before_any_trial(tiny_data: str, tmp_path: Path):
    from components.core.errors import UserError

    with pytest.raises(UserError) as refused:
        run_sweep_stage("activations", tiny_data, tmp_path, sweeps("sweeps.algorithm=hyperband", "sweeps.epochs=9"))
    assert "starts 9 trials at once" in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "trials").exists()
