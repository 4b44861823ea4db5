"""The local Katib backend (katib.backends.local): Katib's semantics, run with Optuna on this machine.

Trials run tests/fixtures/trials/fake_trial.py, which prints
``epoch=N val_accuracy=... loss=...`` lines computed from its arguments, so
every sweep is fast and its optimum known.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from components.core.errors import UserError
from katib.backends.local import ExperimentResult, run_experiment
from katib.backends.local.early_stopping import MedianStopSettings, StoppingRule, median_stop_value
from katib.backends.local.experiment_spec import read_experiment
from katib.backends.local.metrics import Observation, compile_filters, parse_metric_line
from katib.backends.local.samplers import SUPPORTED_ALGORITHMS, missing_packages
from katib.backends.local.search_space import (
    assignment_string,
    grid_search_space,
    optuna_search_space,
)
from katib.backends.local.trial_command import build_trial_command

REPO = Path(__file__).resolve().parents[2]
FAKE_TRIAL = REPO / "tests" / "fixtures" / "trials" / "fake_trial.py"
RUN_SWEEP = REPO / "tests" / "fixtures" / "trials" / "run_sweep.py"

X_PARAMETER = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.2"}}
OPTIMIZER_PARAMETER = {
    "name": "optimizer",
    "parameterType": "categorical",
    "feasibleSpace": {"list": ["sgd", "adam", "nadam"]},
}


def make_experiment(
    parameters: list[dict[str, Any]] | None = None,
    algorithm: str = "grid",
    settings: dict[str, str] | None = None,
    trial_args: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A small Experiment whose trials run the fake trial with --x/--optimizer from the sweep."""
    parameters = parameters if parameters is not None else [X_PARAMETER, OPTIMIZER_PARAMETER]
    names = [p["name"] for p in parameters]
    args = [f"--{name}=${{trialParameters.{name}}}" for name in names] + ["--name", "${trialParameters.trialName}"]
    experiment = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "sweep", "namespace": "kubeflow"},
        "spec": {
            "objective": {
                "type": "maximize",
                "objectiveMetricName": "val_accuracy",
                "additionalMetricNames": ["loss"],
            },
            "algorithm": {
                "algorithmName": algorithm,
                "algorithmSettings": [{"name": k, "value": v} for k, v in (settings or {}).items()],
            },
            "parallelTrialCount": 1,
            "parameters": parameters,
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": n, "reference": n} for n in names]
                + [{"name": "trialName", "reference": "${trialSpec.Name}"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "training-container",
                                        "image": "ghcr.io/fmstudy/trainer:0.1.0",
                                        "command": ["python", str(FAKE_TRIAL)],
                                        "args": args + list(trial_args or []),
                                    }
                                ],
                                "restartPolicy": "Never",
                            }
                        }
                    },
                },
            },
        },
    }
    experiment["spec"].update(spec)
    return experiment


def quiet(_line: str) -> None:
    """Trial output is not needed on the test's terminal."""


def run(experiment: dict[str, Any], run_dir: Path, **kwargs: Any) -> ExperimentResult:
    return run_experiment(experiment, run_dir, log=kwargs.pop("log", quiet), **kwargs)


def params_of(trial: Any) -> tuple[str, ...]:
    return tuple(a["value"] for a in trial.assignments)


# ---- sweeps ---------------------------------------------------------------------


def test_grid_runs_every_point_once_and_finds_the_optimum(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run(make_experiment(parallelTrialCount=2), tmp_path, log=lines.append)

    expected = set(itertools.product(["0.1", "0.3", "0.5"], ["sgd", "adam", "nadam"]))
    assert sorted(params_of(t) for t in result.trials) == sorted(expected)
    assert all(t.state == "Succeeded" for t in result.trials)
    assert (result.condition, result.reason) == ("Succeeded", "ExperimentSuggestionEndReached")
    best = result.optimal_trial
    assert best["parameterAssignments"] == [{"name": "x", "value": "0.3"}, {"name": "optimizer", "value": "nadam"}]
    # ${trialSpec.Name} reached the trial: it printed its own name.
    assert any(f"trial {best['bestTrialName']} starting" in line for line in lines)
    assert json.loads((tmp_path / "optimal_trial.json").read_text()) == best
    assert (tmp_path / "trials" / best["bestTrialName"] / "stdout.log").read_text().count("val_accuracy=") == 3


def test_optimal_trial_has_katibs_current_optimal_trial_shape(tmp_path: Path) -> None:
    parameters = [X_PARAMETER]
    result = run(make_experiment(parameters, trial_args=["--optimizer", "adam"]), tmp_path)

    optimal = json.loads((tmp_path / "optimal_trial.json").read_text())
    assert set(optimal) == {"bestTrialName", "parameterAssignments", "observation"}
    assert optimal["parameterAssignments"] == [{"name": "x", "value": "0.3"}]
    metrics = {m["name"]: m for m in optimal["observation"]["metrics"]}
    assert set(metrics) == {"val_accuracy", "loss"}
    # Values stay the strings the trial printed; the objective is taken by max (maximize).
    assert metrics["val_accuracy"] == {"name": "val_accuracy", "min": "0.83", "max": "0.85", "latest": "0.85"}
    status = json.loads((tmp_path / "experiment_status.json").read_text())
    assert status["status"]["currentOptimalTrial"] == optimal
    assert status["status"]["conditions"][0]["type"] == "Succeeded"
    assert status["status"]["trialsSucceeded"] == 3
    assert result.trials[0].objective_value == pytest.approx(0.81)


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "sobol", "cmaes", "bayesianoptimization"])
def test_every_sampler_runs(tmp_path: Path, algorithm: str) -> None:
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}},
        {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
    ]
    experiment = make_experiment(parameters, algorithm, {"random_state": "7"}, maxTrialCount=4, parallelTrialCount=2)
    if algorithm == "bayesianoptimization" and importlib.util.find_spec("torch") is None:
        pytest.skip("skipped: Optuna's GPSampler needs PyTorch, the optional extra 'gp' (not installed)")
    # cmaes and scipy are runtime dependencies in uv.lock: every other algorithm must really run here.
    assert missing_packages(algorithm) == ()
    result = run(experiment, tmp_path)
    assert len(result.trials) == 4
    assert all(t.state == "Succeeded" for t in result.trials)
    assert all(0.0 <= float(t.assignment_values["x"]) <= 1.0 for t in result.trials)
    assert all(t.assignment_values["epochs"] in {"1", "2", "3"} for t in result.trials)
    assert result.reason == "ExperimentMaxTrialsReached"


def test_a_missing_optional_extra_is_named_in_one_line(tmp_path: Path, monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}}]
    with pytest.raises(UserError) as error:
        run(make_experiment(parameters, "bayesianoptimization", maxTrialCount=2), tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "optional extra gp (torch)" in message and "'.[gp]'" in message
    assert not (tmp_path / "trials").exists()


def test_a_missing_optional_package_is_named(tmp_path: Path, monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cmaes" else real_find_spec(name, *a))
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}},
        {"name": "y", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}},
    ]
    with pytest.raises(UserError, match=r"needs the Python package\(s\) cmaes"):
        run(make_experiment(parameters, "cmaes", maxTrialCount=2), tmp_path)


def test_unknown_algorithm_is_refused_with_the_supported_list(tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        run(make_experiment(algorithm="anneal", maxTrialCount=2), tmp_path)
    message = str(error.value)
    assert "'anneal'" in message
    assert all(name in message for name in SUPPORTED_ALGORITHMS)
    assert not (tmp_path / "trials").exists()


def test_unknown_algorithm_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown setting 'n_trees' for algorithm 'tpe'"):
        run(make_experiment(algorithm="tpe", settings={"n_trees": "3"}, maxTrialCount=2), tmp_path)


def test_goal_stops_scheduling_new_trials(tmp_path: Path) -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}}]
    experiment = make_experiment(parameters, "random", {"random_state": "3"}, maxTrialCount=40)
    experiment["spec"]["objective"]["goal"] = 0.79

    result = run(experiment, tmp_path)

    assert (result.condition, result.reason) == ("Succeeded", "ExperimentGoalReached")
    assert len(result.trials) < 40
    values = [t.objective_value for t in result.trials]
    assert values[-1] >= 0.79 and all(v < 0.79 for v in values[:-1])
    assert result.optimal_trial["bestTrialName"] == result.trials[-1].name


def test_medianstop_stops_a_clearly_worse_trial(tmp_path: Path) -> None:
    # Trials 0-2 do well and set the median-stop value; from trial 3 on they do badly.
    experiment = make_experiment(
        [OPTIMIZER_PARAMETER],
        "random",
        {"random_state": "1"},
        trial_args=["--x", "0.3", "--epochs", "6", "--sleep", "0.05", "--bad-from", "3"],
        maxTrialCount=5,
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [{"name": "start_step", "value": "2"}],
        },
    )
    result = run(experiment, tmp_path)

    states = [t.state for t in result.trials]
    assert states == ["Succeeded"] * 3 + ["EarlyStopped"] * 2
    for stopped in result.trials[3:]:
        assert stopped.reason == "TrialEarlyStopped"
        # Stopped at start_step (2); a line already on its way may still be read, never all 6.
        assert 2 <= len(stopped.objective_history) < 6
        assert "median-stop value" in stopped.message
    # Early-stopped trials count as completed toward maxTrialCount, not as failed.
    assert (result.condition, result.reason) == ("Succeeded", "ExperimentMaxTrialsReached")
    assert result.optimal_trial["bestTrialName"] in {t.name for t in result.trials[:3]}


def test_crashing_trial_is_failed_and_the_experiment_goes_on(tmp_path: Path) -> None:
    experiment = make_experiment([X_PARAMETER], trial_args=["--crash-if-x", "0.3"])
    result = run(experiment, tmp_path)

    by_x = {t.assignment_values["x"]: t for t in result.trials}
    assert by_x["0.3"].state == "Failed"
    assert by_x["0.3"].reason == "TrialFailed"
    assert "exit status 3" in by_x["0.3"].message and "simulated crash" in by_x["0.3"].message
    assert by_x["0.1"].state == by_x["0.5"].state == "Succeeded"
    assert result.condition == "Succeeded"
    assert result.optimal_trial["bestTrialName"] != by_x["0.3"].name


def test_max_failed_trial_count_fails_the_experiment_and_keeps_results(tmp_path: Path) -> None:
    experiment = make_experiment(trial_args=["--crash"], maxTrialCount=9, maxFailedTrialCount=2)
    result = run(experiment, tmp_path)

    assert (result.condition, result.reason) == ("Failed", "ExperimentFailed")
    assert "maxFailedTrialCount 2" in result.message
    assert [t.state for t in result.trials] == ["Failed", "Failed"]
    for name in ("trials.csv", "trials.json", "optimal_trial.json", "experiment_status.json", "trials.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    status = json.loads((tmp_path / "experiment_status.json").read_text())
    assert status["condition"] == "Failed" and status["status"]["trialsFailed"] == 2
    assert json.loads((tmp_path / "optimal_trial.json").read_text())["bestTrialName"] == ""
    assert len(json.loads((tmp_path / "trials.json").read_text())) == 2


def test_trial_without_objective_metric_is_failed_as_metrics_unavailable(tmp_path: Path) -> None:
    result = run(make_experiment([X_PARAMETER], trial_args=["--no-metrics"], maxTrialCount=1), tmp_path)

    (trial,) = result.trials
    assert (trial.state, trial.reason) == ("Failed", "MetricsUnavailable")
    assert "val_accuracy" in trial.message
    assert trial.metrics[0] == {
        "name": "val_accuracy",
        "min": "unavailable",
        "max": "unavailable",
        "latest": "unavailable",
    }
    assert result.status()["metricsUnavailableTrialList"] == [trial.name]


def _utc(timestamp: str) -> datetime:
    # Katib's timestamps end in "Z", which datetime.fromisoformat reads only from Python 3.11 on.
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_parallel_trials_overlap(tmp_path: Path) -> None:
    experiment = make_experiment([X_PARAMETER], trial_args=["--epochs", "2", "--sleep", "0.3"], parallelTrialCount=2)
    result = run(experiment, tmp_path)

    spans = [(_utc(t.started_at), _utc(t.finished_at)) for t in result.trials]
    overlapping = [(a, b) for a, b in itertools.combinations(spans, 2) if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans


def test_custom_metrics_format_filter(tmp_path: Path) -> None:
    colon_filter = r"([\w-]+):\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
    experiment = make_experiment(
        [X_PARAMETER],
        trial_args=["--format", "colon"],
        maxTrialCount=1,
        metricsCollectorSpec={"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": [colon_filter]}}},
    )
    result = run(experiment, tmp_path / "custom")
    assert result.trials[0].state == "Succeeded"
    assert result.trials[0].objective_history == pytest.approx([0.74, 0.75, 0.76])

    # The same output read with Katib's default name=value filter has no metrics.
    del experiment["spec"]["metricsCollectorSpec"]
    default = run(experiment, tmp_path / "default")
    assert default.trials[0].reason == "MetricsUnavailable"


def test_plots_html_and_hparams_are_written(tmp_path: Path) -> None:
    result = run(make_experiment([OPTIMIZER_PARAMETER], trial_args=["--x", "0.3"]), tmp_path)

    png = (tmp_path / "objective.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    page = (tmp_path / "trials.html").read_text()
    assert "<script>" in page and all(t.name in page for t in result.trials)
    header = (tmp_path / "trials.csv").read_text().splitlines()[0]
    assert header.split(",")[:5] == ["trial", "state", "optimizer", "val_accuracy", "loss"]

    board = tmp_path / "tensorboard"
    assert "hparams" in _plugins_in(board)  # the experiment's hparams config at the root
    for trial in result.trials:
        events = list((board / trial.name).glob("events.out.tfevents.*"))
        assert len(events) == 1
        tags = _scalar_tags(events[0])
        assert {"val_accuracy", "loss"} <= tags
        assert "hparams" in _plugins_in(board / trial.name)


def test_plot_for_several_parameters_ranks_trials(tmp_path: Path) -> None:
    run(make_experiment(maxTrialCount=4, parallelTrialCount=2), tmp_path)
    assert (tmp_path / "objective.png").read_bytes().startswith(b"\x89PNG")


# ---- resume ---------------------------------------------------------------------


def test_resume_after_kill_reruns_only_unfinished_trials(tmp_path: Path) -> None:
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.4", "step": "0.1"}}
    ]
    experiment = make_experiment(parameters, trial_args=["--epochs", "3", "--sleep", "0.15"])
    experiment_file = tmp_path / "experiment.json"
    experiment_file.write_text(json.dumps(experiment))
    run_dir = tmp_path / "run"

    child = _start_sweep(experiment_file, run_dir)
    try:
        _wait_for(lambda: _states(run_dir).count("Succeeded") >= 2 and _running_with_output(run_dir), child)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    before = {r["name"]: r for r in _records(run_dir)}
    finished_before = {n: r for n, r in before.items() if r["state"] == "Succeeded"}
    interrupted = [n for n, r in before.items() if r["state"] == "Running"]
    assert len(finished_before) >= 2 and interrupted

    result = run(experiment, run_dir)

    assert len(result.trials) == 4  # the grid size: nothing run twice, nothing skipped
    assert sorted(params_of(t) for t in result.trials) == [("0.1",), ("0.2",), ("0.3",), ("0.4",)]
    assert all(t.state == "Succeeded" for t in result.trials)
    after = {t.name: t for t in result.trials}
    for name, record in finished_before.items():
        assert after[name].started_at == record["started_at"]  # kept, not run again
        assert after[name].attempts == 1
    for name in interrupted:
        assert after[name].attempts == 2
        assert (run_dir / "trials" / name / "stdout.attempt-1.log").exists()
    assert result.reason == "ExperimentSuggestionEndReached"


def test_ctrl_c_ends_the_trials_and_leaves_a_resumable_run(tmp_path: Path) -> None:
    parameters = [
        {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.2", "step": "0.1"}}
    ]
    experiment = make_experiment(parameters, trial_args=["--epochs", "2", "--sleep", "0.3"])
    experiment_file = tmp_path / "experiment.json"
    experiment_file.write_text(json.dumps(experiment))
    run_dir = tmp_path / "run"
    child = _start_sweep(experiment_file, run_dir)
    try:
        _wait_for(lambda: _running_with_output(run_dir), child)
        os.kill(child.pid, signal.SIGINT)  # the runner alone, as if its trial ignored Ctrl-C
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)  # the runner ended its trial process before exiting
    status = json.loads((run_dir / "experiment_status.json").read_text())
    assert status["condition"] == "Running" and "resume" in status["message"]
    assert _states(run_dir) == ["Running"]

    result = run(experiment, run_dir)
    assert [t.state for t in result.trials] == ["Succeeded", "Succeeded"]
    assert result.trials[0].attempts == 2


def test_a_finished_run_is_not_run_again(tmp_path: Path) -> None:
    experiment = make_experiment([X_PARAMETER])
    first = run(experiment, tmp_path)
    second = run(experiment, tmp_path)
    assert [t.started_at for t in second.trials] == [t.started_at for t in first.trials]
    assert second.reason == first.reason


def test_raising_max_trial_count_continues_a_finished_run(tmp_path: Path) -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}}]
    # Katib restarts a finished Experiment only with resumePolicy LongRunning or FromVolume.
    experiment = make_experiment(parameters, "random", {"random_state": "5"}, maxTrialCount=2,
                                 resumePolicy="LongRunning")
    assert len(run(experiment, tmp_path).trials) == 2
    experiment["spec"]["maxTrialCount"] = 3
    result = run(experiment, tmp_path)
    assert len(result.trials) == 3 and result.reason == "ExperimentMaxTrialsReached"


def test_resuming_a_different_search_is_refused(tmp_path: Path) -> None:
    run(make_experiment([X_PARAMETER], maxTrialCount=1), tmp_path)
    changed = copy.deepcopy(X_PARAMETER)
    changed["feasibleSpace"]["max"] = "0.9"
    with pytest.raises(UserError, match="different search"):
        run(make_experiment([changed], maxTrialCount=1), tmp_path)


# ---- the pieces -----------------------------------------------------------------


def test_metric_lines_are_parsed_like_katibs_stdout_collector() -> None:
    names = ["val_accuracy", "loss"]
    filters = compile_filters([])
    reports = parse_metric_line("epoch=3 val_accuracy=0.91 loss=2.5e-01 lr=0.1", names, filters)
    assert [(r.name, r.value, r.text) for r in reports] == [("val_accuracy", 0.91, "0.91"), ("loss", 0.25, "2.5e-01")]
    assert parse_metric_line("accuracy=0.5 epoch=2", names, filters) == []  # names no metric: skipped
    assert parse_metric_line("val_accuracy = nan", names, filters) == []
    with pytest.raises(UserError, match="two groups"):
        compile_filters([r"val_accuracy=(\d+)"])


def test_metric_strategies_pick_min_max_or_latest() -> None:
    observation = Observation(["val_accuracy", "loss"], "val_accuracy")
    filters = compile_filters([])
    for line in ("val_accuracy=0.5 loss=0.9", "val_accuracy=0.8 loss=0.4", "val_accuracy=0.7 loss=0.6"):
        for report in parse_metric_line(line, ["val_accuracy", "loss"], filters):
            observation.add(report)
    assert observation.value("val_accuracy", "max") == 0.8
    assert observation.value("val_accuracy", "min") == 0.5
    assert observation.value("val_accuracy", "latest") == 0.7
    assert observation.objective_history == [0.5, 0.8, 0.7]
    assert observation.as_katib()[1] == {"name": "loss", "min": "0.4", "max": "0.9", "latest": "0.6"}


def test_default_metric_strategies_follow_katibs_defaulting() -> None:
    experiment = make_experiment()
    assert read_experiment(experiment).metric_strategies == {"val_accuracy": "max", "loss": "max"}
    experiment["spec"]["objective"]["type"] = "minimize"
    experiment["spec"]["objective"]["metricStrategies"] = [{"name": "loss", "value": "latest"}]
    assert read_experiment(experiment).metric_strategies == {"val_accuracy": "min", "loss": "latest"}


def test_parameters_become_optuna_distributions_and_back() -> None:
    parameters = (
        {
            "name": "lr",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
        },
        {"name": "dropout", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.1"}},
        {"name": "units", "parameterType": "int", "feasibleSpace": {"min": "32", "max": "128", "step": "32"}},
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd"]}},
        {"name": "filters", "parameterType": "discrete", "feasibleSpace": {"list": ["32", "64", "0.5"]}},
    )
    space = optuna_search_space(parameters)
    assert space["lr"] == FloatDistribution(0.0001, 0.1, log=True)
    assert space["dropout"] == FloatDistribution(0.1, 0.5, step=0.1)
    assert space["units"] == IntDistribution(32, 128, step=32)
    assert space["optimizer"] == CategoricalDistribution(("adam", "sgd"))
    assert space["filters"] == CategoricalDistribution((32, 64, 0.5))
    grid = grid_search_space(parameters[1:])
    assert grid == {
        "dropout": [0.1, 0.2, 0.3, 0.4, 0.5],
        "units": [32, 64, 96, 128],
        "optimizer": ["adam", "sgd"],
        "filters": [32, 64, 0.5],
    }
    assert [assignment_string(parameters[4], v) for v in (32, 0.5)] == ["32", "0.5"]
    assert assignment_string(parameters[2], 64) == "64"
    with pytest.raises(UserError, match="needs feasibleSpace.step"):
        grid_search_space(parameters[:1])


def test_median_stop_value_is_katibs_mean_of_early_averages() -> None:
    settings = MedianStopSettings(min_trials_required=2, start_step=2)
    assert median_stop_value([[0.5, 0.7, 0.9]], settings) is None  # too few succeeded trials
    assert median_stop_value([[0.5, 0.7, 0.9], [0.8, 1.0]], settings) == pytest.approx((0.6 + 0.9) / 2)
    rule = StoppingRule(value=0.6, start_step=2, maximize=True)
    assert [rule.should_stop(v) for v in (0.1, 0.5, 0.7)] == [False, True, False]
    rule = StoppingRule(value=0.6, start_step=2, maximize=True)
    assert [rule.should_stop(v) for v in (0.7, 0.1)] == [False, False]  # the best so far counts


def test_trial_template_is_filled_like_katib_fills_it() -> None:
    experiment = make_experiment([X_PARAMETER])
    template = experiment["spec"]["trialTemplate"]
    template["trialParameters"].append({"name": "team", "reference": "${trialSpec.Labels[team]}"})
    template["trialSpec"]["metadata"] = {"labels": {"team": "vision"}}
    container = template["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] += ["--team", "${trialParameters.team}", "--ns", "${trialSpec.Namespace}"]
    container["env"] = [{"name": "KERAS_BACKEND", "value": "jax"}, {"name": "PROFILE", "value": "seed"}]

    command = build_trial_command(
        template, "sweep-0007", "kubeflow", [{"name": "x", "value": "0.3"}], {"PROFILE": "smoke"}
    )

    assert command.argv[0] == sys.executable  # the image's python is this interpreter locally
    assert command.argv[1:] == [
        str(FAKE_TRIAL),
        "--x=0.3",
        "--name",
        "sweep-0007",
        "--team",
        "vision",
        "--ns",
        "kubeflow",
    ]
    assert command.env["KERAS_BACKEND"] == "jax" and command.env["PROFILE"] == "smoke"
    assert command.env["PYTHONUNBUFFERED"] == "1"


def test_undefined_trial_parameter_is_refused_before_any_trial(tmp_path: Path) -> None:
    experiment = make_experiment([X_PARAMETER], trial_args=["--lr", "${trialParameters.learningRate}"], maxTrialCount=1)
    with pytest.raises(UserError, match="learningRate"):
        run(experiment, tmp_path)
    assert not (tmp_path / "trials").exists()


# ---- helpers --------------------------------------------------------------------


def _records(run_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in (run_dir / "trials").glob("*/trial.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    return records


def _states(run_dir: Path) -> list[str]:
    return [r["state"] for r in _records(run_dir)]


def _running_with_output(run_dir: Path) -> bool:
    """A trial is running and has printed something (so its output must be kept on resume)."""
    for record in _records(run_dir):
        log = run_dir / "trials" / record["name"] / "stdout.log"
        if record["state"] == "Running" and log.exists() and log.stat().st_size > 0:
            return True
    return False


def _start_sweep(experiment_file: Path, run_dir: Path) -> subprocess.Popen:
    """The sweep in a child process, in its own process group so a kill takes its trials along."""
    return subprocess.Popen(
        [sys.executable, str(RUN_SWEEP), str(experiment_file), str(run_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # As a terminal's Ctrl-C finds it: a background job (CI started with `&`) inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(condition: Any, child: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the sweep"
        time.sleep(0.02)


def _events(path: Path) -> list[Any]:
    """The events in one TensorBoard event file (TFRecord framing), without TensorFlow."""
    from tensorboard.compat.proto import event_pb2

    data, events, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12
        events.append(event_pb2.Event.FromString(data[offset : offset + length]))
        offset += length + 4
    return events


def _summary_values(folder: Path) -> list[Any]:
    values = []
    for path in folder.glob("events.out.tfevents.*"):
        for event in _events(path):
            values.extend(event.summary.value)
    return values


def _plugins_in(folder: Path) -> set[str]:
    return {v.metadata.plugin_data.plugin_name for v in _summary_values(folder) if v.metadata.plugin_data.plugin_name}


def _scalar_tags(path: Path) -> set[str]:
    return {
        v.tag
        for e in _events(path)
        for v in e.summary.value
        if v.HasField("simple_value") and not math.isnan(v.simple_value)
    }
