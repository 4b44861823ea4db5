"""What the local Katib backend records: one observation per epoch, Katib's status lists and restarts.

Katib facts, from kubeflow/katib (master, v0.18 line):
- pkg/controller.v1beta1/experiment/util/status_util.go, updateTrialsSummary: one else-if chain
  puts each trial in exactly one of the killed/failed/succeeded/early-stopped/running/
  metrics-unavailable/pending lists; UpdateExperimentStatusCondition counts failed +
  metrics-unavailable against maxFailedTrialCount.
- pkg/webhook/v1beta1/experiment/validator/validator.go, validateExperiment: a changed spec of a
  completed Experiment is refused unless IsCompletedExperimentRestartable (status_util.go):
  Succeeded by ExperimentMaxTrialsReached with resumePolicy LongRunning or FromVolume; and the new
  maxTrialCount must be greater than status.trials.
- pkg/metricscollector/v1beta1/common/const.go: the default StdOut filter, which matches any
  `name=value` on a line that names a metric (so `trial: done, best val_accuracy=0.9` counts).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from components.core.errors import UserError
from katib.backends.local.metrics import compile_filters, parse_metric_line
from tests.fixtures.trials.local_sweeps import kill_quietly, pids_that, start_sweep, wait_for
from tests.unit.test_local_backend import X_PARAMETER, make_experiment, run

GRID_3 = [X_PARAMETER]


def resumable(out: Path, *extra: str, **spec) -> dict:
    args = ["--epochs", "3", "--out", f"{out}/${{trialParameters.trialName}}", "--stall-if-x", "0.5", *extra]
    return make_experiment(GRID_3, trial_args=args, **spec)


def metrics_file(out: Path) -> str:
    return f"{out}/${{trialSpec.Name}}/metrics.json"


def observed(result) -> dict[str, tuple]:
    return {t.name: (t.state, t.metrics, t.objective_history, t.objective_value) for t in result.trials}


# ---- 6. one observation per epoch ------------------------------------------------


def test_a_resumed_trial_is_observed_once_per_epoch_from_its_own_metrics(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    child = start_sweep(experiment, run_dir, metrics_file(out))
    try:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"), child)  # epoch 1 done and printed
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    resumed = run(experiment, run_dir, trial_metrics_file=metrics_file(out))
    assert resumed.trials[0].attempts == 2  # its second attempt printed epochs 2 and 3 only

    uninterrupted = run(resumable(tmp_path / "out2", maxTrialCount=3), tmp_path / "run2",
                        trial_metrics_file=metrics_file(tmp_path / "out2"))
    assert observed(resumed) == observed(uninterrupted)
    first = resumed.trials[0]
    assert first.objective_history == [0.74, 0.75, 0.76]  # epochs 1-3, the closing line not counted
    assert {"name": "val_accuracy", "min": "0.74", "max": "0.76", "latest": "0.76"} in first.metrics


def test_stdout_alone_keeps_katibs_semantics(tmp_path: Path) -> None:
    # Without the trial's own file, its output is read as Katib's StdOut collector reads it.
    result = run(resumable(tmp_path / "out", maxTrialCount=1), tmp_path / "run")
    # The fake trial's closing line, like study train's today, matches Katib's default filter.
    assert result.trials[0].objective_history == [0.74, 0.75, 0.76, 0.76]


def test_the_parser_picks_one_observation_per_epoch_from_a_trials_lines() -> None:
    from katib.backends.local.metrics import observation_from_history

    names, filters = ["val_accuracy", "loss"], compile_filters([])
    lines = [
        "trial: resuming after epoch 1 of 3",
        "epoch=2 accuracy=0.81 loss=0.52 val_accuracy=0.8 val_loss=0.55",
        "trial: epoch 2/3 trained in 1.2 s (900 images/s)",
        "epoch=3 accuracy=0.83 loss=0.47 val_accuracy=0.82 val_loss=0.5",
    ]
    reports = [r for line in lines for r in parse_metric_line(line, names, filters)]
    assert [(r.name, r.text) for r in reports] == [("loss", "0.52"), ("val_accuracy", "0.8"),
                                                   ("loss", "0.47"), ("val_accuracy", "0.82")]
    history = {"val_accuracy": [0.7, 0.8, 0.82], "loss": [0.6, 0.52, 0.47], "accuracy": [0.7, 0.81, 0.83]}
    observation = observation_from_history(history, names, "val_accuracy")
    assert observation.objective_history == [0.7, 0.8, 0.82]
    assert observation.metrics["loss"].count == 3
    assert observation_from_history({"loss": [0.5]}, names, "val_accuracy") is None
    assert observation_from_history({"val_accuracy": ["x"]}, names, "val_accuracy") is None


def test_a_trial_without_its_metrics_file_falls_back_to_its_output(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run(make_experiment(GRID_3, maxTrialCount=1), tmp_path,
                 trial_metrics_file=f"{tmp_path}/none/${{trialSpec.Name}}/metrics.json", log=lines.append)
    assert result.trials[0].objective_history == [0.74, 0.75, 0.76]  # x=0.5, sgd
    assert any("no per-epoch metrics" in line for line in lines)


# ---- 7. status lists and restarts ------------------------------------------------


def test_metrics_unavailable_trials_are_not_also_failed(tmp_path: Path) -> None:
    experiment = make_experiment(GRID_3, trial_args=["--crash-if-x", "0.1", "--no-metrics"], maxFailedTrialCount=3)
    result = run(experiment, tmp_path)
    status = json.loads((tmp_path / "experiment_status.json").read_text())["status"]
    assert status["trialMetricsUnavailable"] == 2 and status["trialsFailed"] == 1
    assert set(status["failedTrialList"]).isdisjoint(status["metricsUnavailableTrialList"])
    assert len(status["failedTrialList"] + status["metricsUnavailableTrialList"]) == len(result.trials) == 3


def test_maxfailed_counts_metrics_unavailable_trials_as_katib_does(tmp_path: Path) -> None:
    experiment = make_experiment(GRID_3, trial_args=["--no-metrics"], maxFailedTrialCount=2, maxTrialCount=3)
    result = run(experiment, tmp_path)
    assert (result.condition, len(result.trials)) == ("Failed", 2)


def test_a_finished_experiment_with_resume_policy_never_is_not_restarted(tmp_path: Path) -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}}]
    experiment = make_experiment(parameters, "random", {"random_state": "5"}, maxTrialCount=2)
    run(experiment, tmp_path)
    experiment["spec"]["maxTrialCount"] = 3
    with pytest.raises(UserError) as error:
        run(experiment, tmp_path)
    assert "resumePolicy Never" in str(error.value) and "\n" not in str(error.value)
    assert len(list((tmp_path / "trials").iterdir())) == 2  # nothing ran


def test_a_restart_must_raise_max_trial_count_above_the_trials(tmp_path: Path) -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}}]
    experiment = make_experiment(parameters, "random", {"random_state": "5"}, maxTrialCount=3,
                                 resumePolicy="FromVolume")
    run(experiment, tmp_path)
    experiment["spec"]["maxTrialCount"] = 2
    with pytest.raises(UserError, match="maxTrialCount 2 must be greater than the 3 trials"):
        run(experiment, tmp_path)


@pytest.mark.parametrize("point", ["trial-ended", "recorded"])
def test_a_kill_between_a_trials_end_and_its_record_or_tell_records_it_once(tmp_path: Path, point: str) -> None:
    # trial-ended: the trial process is done, its record not written; recorded: written, Optuna not told.
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, maxTrialCount=3)
    child = start_sweep(experiment, run_dir, metrics_file(out), STUDY_TEST_KILL_AT=point)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    resumed = run(experiment, run_dir, trial_metrics_file=metrics_file(out))
    uninterrupted = run(resumable(tmp_path / "out2", maxTrialCount=3), tmp_path / "run2",
                        trial_metrics_file=metrics_file(tmp_path / "out2"))
    assert observed(resumed) == observed(uninterrupted)
    # An ended trial is recorded from its end (trial_run.ENDED_FILE) and its log, not run again.
    assert resumed.trials[0].attempts == 1
