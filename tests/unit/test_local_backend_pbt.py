"""katib.backends.local.pbt: Katib's pbt service through run_experiment, with a stand-in trial that checkpoints.

Expected behaviour worked out from Katib v0.19.0 pkg/suggestion/v1beta1/pbt/service.py (PbtJobQueue:
_seed_from_base, update, generate, _segment_sample_pool; HyperParameterSampler.perturb) and
pkg/webhook/v1beta1/pod/inject_webhook.go (mutateSuggestionVolume: the trial's folder
<experiment>/<trial> is mounted at suggestion_trial_dir). The stand-in trial is written after Katib's
simple-pbt example: it resumes from a checkpoint file in the folder it is given, trains, saves.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from components.core.errors import UserError
from katib.backends.local import pbt, run_experiment

TRIAL = (
    "import json, os, sys\n"
    "a = dict(x.split('=', 1) for x in sys.argv[1:])\n"
    "lr, path = float(a['lr']), os.path.join(a['checkpoint'], 'training.json')\n"
    "state = json.load(open(path)) if os.path.exists(path) else {'accuracy': 0.0, 'step': 0, 'by': ''}\n"
    "print(f\"resumed step={state['step']} by={state['by']}\")\n"
    "for _ in range(3):\n"
    "    state['step'] += 1\n"
    "    state['accuracy'] += 10 * lr * (1 - state['accuracy'])\n"
    "    print(f\"Validation-accuracy={state['accuracy']:.6f}\")\n"
    "state['by'] = a['name']\n"
    "json.dump(state, open(path, 'w'))\n"
)
CHECKPOINTS = "/var/log/katib/checkpoints/"


def experiment(settings: dict[str, str], max_trials: int = 12, lr_space: dict | None = None) -> dict[str, Any]:
    lr = {"name": "lr", "parameterType": "double",
          "feasibleSpace": lr_space or {"min": "0.001", "max": "0.02", "step": "0.001"}}
    container = {"name": "training-container", "command": [
        sys.executable, "-c", TRIAL, "lr=${trialParameters.lr}", f"checkpoint={CHECKPOINTS}",
        "name=${trialParameters.trialName}"]}
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "pbt", "namespace": "kubeflow"},
            "spec": {"objective": {"type": "maximize", "objectiveMetricName": "Validation-accuracy"},
                     "algorithm": {"algorithmName": "pbt",
                                   "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()]},
                     "parallelTrialCount": 1, "maxTrialCount": max_trials, "parameters": [lr],
                     "trialTemplate": {"primaryContainerName": "training-container",
                                       "trialParameters": [{"name": "lr", "reference": "lr"},
                                                           {"name": "trialName", "reference": "${trialSpec.Name}"}],
                                       "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {
                                           "template": {"spec": {"containers": [container]}}}}}}}


SETTINGS = {"suggestion_trial_dir": CHECKPOINTS, "n_population": "5", "truncation_threshold": "0.4"}


def test_generations_exploit_explore_and_the_checkpoint_hand_over(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pbt, "new_random", lambda: random.Random(7))  # one fixed draw sequence
    result = run_experiment(experiment(SETTINGS), tmp_path, log=lambda line: None)
    trials = {t.name: t for t in result.trials}
    names = [t.name for t in result.trials]
    # The service's jobs by trial name (the last trial's end is read at the next request, never made).
    service = json.loads((tmp_path / "suggestion_state.json").read_text())["service"]
    jobs = {**service["completed"], **service["running"]}
    lr = {name: trials[name].assignments[0]["value"] for name in names}
    value = {name: trials[name].objective_value for name in names}
    # One slot, so every request is 1. Trials 1-5: the seeded population (generation 0). Request 6:
    # nothing pending and only 5 (<= n_population) finished, with no generation before: one more
    # random draw (generation 0). Request 7: 6 finished (> 5): the next generation, 5 jobs made from the
    # 6. Request 12: 5 of generation 1 finished (<= 5): one more child drawn from the generation before.
    assert [jobs[n]["generation"] for n in names] == [0] * 6 + [1] * 6
    assert all(jobs[n]["parent"] is None for n in names[:6])
    first = names[:6]
    low, high = np.quantile([value[n] for n in first], (0.4, 0.6))
    below = {n for n in first if value[n] < low}
    upper = {n for n in first if value[n] >= high}
    children = names[6:11]
    exploited = [c for c in children if jobs[c]["parent"] in below]
    # int(5 * 0.4) = 2 exploit children (fewer if fewer trials lie below the 0.4 quantile) ...
    assert len(exploited) == min(2, len(below))
    for child in exploited:  # ... each with a top member's values, from its own (truncated) parent's checkpoint
        assert lr[child] in {lr[u] for u in upper}
    for child in set(children) - set(exploited):  # ... the rest explore: lr x0.8 or x1.2, within min..max
        parent = jobs[child]["parent"]
        assert value[parent] >= low
        options = [min(0.02, max(0.001, float(lr[parent]) * f)) for f in (0.8, 1.2)]
        assert any(float(lr[child]) == pytest.approx(o) for o in options)
    assert len({jobs[c]["parent"] for c in children}) == 5  # each parent of the 6 at most once
    # The hand-over: a child starts from its parent's final checkpoint, written by the parent.
    for child in names[6:]:
        parent = jobs[child]["parent"]
        log = (tmp_path / "trials" / child / "stdout.log").read_text()
        assert f"resumed step=3 by={parent}" in log
        assert json.loads((tmp_path / "suggestion" / "pbt" / child / "training.json").read_text())["step"] == 6
    for name in first:
        assert "resumed step=0 by=" in (tmp_path / "trials" / name / "stdout.log").read_text()
    assert result.reason == "ExperimentMaxTrialsReached"


@pytest.mark.parametrize(("settings", "message"), [
    ({"n_population": "5", "truncation_threshold": "0.2"}, "needs the settings suggestion_trial_dir"),
    ({**SETTINGS, "n_population": "4"}, "n_population='4'"),
    ({**SETTINGS, "truncation_threshold": "1.5"}, "truncation_threshold='1.5'"),
    ({**SETTINGS, "resample_probability": "2"}, "resample_probability='2'"),
    ({**SETTINGS, "suggestion_trial_dir": "ckpt"}, "expected an absolute path"),
    ({**SETTINGS, "population": "5"}, "unknown setting 'population'"),
])
def test_katibs_setting_checks_are_one_line_each(tmp_path: Path, settings: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message) as raised:
        run_experiment(experiment(settings), tmp_path, log=lambda line: None)
    assert "\n" not in str(raised.value)


def test_a_double_without_a_step_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs feasibleSpace.step"):
        run_experiment(experiment(SETTINGS, lr_space={"min": "0.001", "max": "0.02"}), tmp_path, log=lambda line: None)


def test_perturb_and_resample_follow_katibs_sampler() -> None:
    rng = random.Random(0)
    ints = pbt._Sampler({"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "10"}})
    assert ints.values == [str(i) for i in range(1, 11)]  # Katib's int step defaults to 1
    assert {ints.perturb("10", rng) for _ in range(50)} == {"8", "10"}  # int(10 * 1.2) = 12 -> clamped to 10
    assert {ints.perturb("5", rng) for _ in range(50)} == {"4", "6"}
    words = pbt._Sampler({"name": "o", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b", "c"]}})
    assert {words.perturb("c", rng) for _ in range(50)} == {"b", "a"}  # past the last: the first
    assert {words.perturb("a", rng) for _ in range(50)} == {"c", "b"}  # before the first: the last


def _generations_after_a_kill(tmp_path: Path, kill_at: str) -> tuple[Any, dict, list[str]]:
    """The sweep in a child process SIGKILLed at ``kill_at``, then run again on the same folder to its end."""
    import signal

    from tests.fixtures.trials.local_sweeps import start_sweep

    run_dir = tmp_path / "run"
    child = start_sweep(experiment(SETTINGS), run_dir, STUDY_TEST_KILL_AT=kill_at)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    result = run_experiment(experiment(SETTINGS), run_dir, log=lambda line: None)
    service = json.loads((run_dir / "suggestion_state.json").read_text())["service"]
    return result, {**service["completed"], **service["running"]}, [t.name for t in result.trials]


@pytest.mark.parametrize("kill_at", [
    "suggestion-recorded@7",  # the first child's record is written; the service's state does not say so yet
    "trial-ended@3",  # a seed member has ended; its end is not recorded
    "trial-ended@8",  # a child has ended, from its parent's checkpoint; its end is not recorded
])
def test_a_sweep_killed_and_resumed_trains_each_member_once_from_the_right_checkpoint(
        tmp_path: Path, kill_at: str) -> None:
    """After the kill the resumed sweep still runs Katib's 12 trials, 6 per generation, and no trial
    trains twice: each seed member's checkpoint is at step 3 and each child's at 6 (its parent's 3 plus
    its own), where a trial run again on its own folder would stand at 6 and 9."""
    result, jobs, names = _generations_after_a_kill(tmp_path, kill_at)
    assert len(names) == len(set(names)) == 12
    assert all(t.state == "Succeeded" for t in result.trials)
    assert [jobs[n]["generation"] for n in names] == [0] * 6 + [1] * 6
    checkpoint = {n: json.loads((tmp_path / "run" / "suggestion" / "pbt" / n / "training.json").read_text())
                  for n in names}
    assert {n: checkpoint[n]["step"] for n in names[:6]} == {n: 3 for n in names[:6]}
    assert {n: checkpoint[n]["step"] for n in names[6:]} == {n: 6 for n in names[6:]}
    for child in names[6:11]:
        assert f"resumed step=3 by={jobs[child]['parent']}" in (
            tmp_path / "run" / "trials" / child / "stdout.log").read_text()
    assert len({jobs[c]["parent"] for c in names[6:11]}) == 5
