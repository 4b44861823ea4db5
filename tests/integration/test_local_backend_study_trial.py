"""The local Katib backend with the real trial (`study train`): a resumed trial counts each epoch once.

The trial prints one metrics line per epoch it runs, so its second attempt,
resumed from a checkpoint, prints the later epochs only; the observation
comes from the trial's own metrics.json (katib.sweep passes it the same way).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest

from tests.unit.test_local_backend import make_experiment, run

pytestmark = pytest.mark.slow

METRICS = ["val_accuracy", "accuracy", "loss", "val_loss"]


def study_trial_experiment(data: str, out: Path) -> dict:
    experiment = make_experiment([{"name": "optimizer", "parameterType": "categorical",
                                   "feasibleSpace": {"list": ["Adam"]}}])
    experiment["spec"]["objective"]["additionalMetricNames"] = METRICS[1:]
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-m", "pipelines.cli", "train"]
    container["args"] = ["--data", data, "--output", f"{out}/${{trialParameters.trialName}}",
                         "--optimizer", "${trialParameters.optimizer}", "--epochs", "3", "--batch-size", "64",
                         "--seed", "3"]
    return experiment


def test_a_resumed_study_trial_is_observed_once_per_epoch(tiny_data: str, tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = study_trial_experiment(tiny_data, out)
    metrics_file = f"{out}/${{trialSpec.Name}}/metrics.json"
    checkpoint = out / "sweep-0000" / "checkpoint" / "state.json"

    def ctrl_c_after_the_first_checkpoint() -> None:
        while not checkpoint.exists():
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # handled by the runner on this test's main thread

    threading.Thread(target=ctrl_c_after_the_first_checkpoint, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(experiment, run_dir, trial_metrics_file=metrics_file)
    result = run(experiment, run_dir, trial_metrics_file=metrics_file)

    (trial,) = result.trials
    assert (trial.state, trial.attempts) == ("Succeeded", 2)
    resumed_output = (run_dir / "trials" / trial.name / "stdout.log").read_text()
    done = int(re.search(r"resuming after epoch (\d) of 3", resumed_output).group(1))  # 1, or 2 if slow
    assert resumed_output.count("epoch=") == 3 - done  # the second attempt printed the later epochs only
    assert len(trial.objective_history) == 3  # yet every epoch is observed, each once
    assert [m["name"] for m in trial.metrics] == METRICS
    assert all(m["latest"] != "unavailable" for m in trial.metrics)
