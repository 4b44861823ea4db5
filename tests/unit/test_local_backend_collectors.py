"""The local backend's metrics collectors: File (TEXT, JSON), TensorFlowEvent and Custom, as Katib reads them.

Facts from Katib v0.19.0: pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector.go
(TEXT lines through the filters, JSON lines as objects with string values), cmd/metricscollector/
v1beta1/file-metricscollector/main.go (the file is followed for stop rules),
pkg/metricscollector/v1beta1/tfevent-metricscollector/tfevent_loader.py (_should_consider, tensors
then scalars), pkg/webhook/v1beta1/pod/utils.go (getMountPath: the volume at a File source's folder
or at a Directory) and experiment_defaults.go (default paths). Trials are stand-ins,
tests/fixtures/trials/example_trial.py, writing metrics as Katib's examples do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from components.core.errors import UserError
from katib.backends.local.collector_spec import read_collector
from katib.backends.local.collectors import TrialCollection
from katib.backends.local.early_stopping import StoppingRule
from katib.backends.local.metrics import compile_filters
from katib.backends.local.mounts import TrialMount
from katib.backends.local.tfevent_metrics import should_consider
from katib.backends.local.trial_command import TrialCommand, container_env
from katib.backends.local.trial_run import ProcessRegistry, run_trial
from tests.fixtures.trials.example_experiments import (
    CUSTOM_COLLECTOR,
    EXAMPLE_TRIAL,
    example_experiment,
    metric,
    run,
)

# examples/v1beta1/metrics-collector/file-metrics-collector.yaml's filter, as its trial logs.
PYTORCH_MNIST_FILTER = r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"


def file_collector(path: str, **source: object) -> dict:
    return {"collector": {"kind": "File"}, "source": {"fileSystemPath": {"path": path, "kind": "File"}, **source}}


def best(result) -> str:
    return {a["name"]: a["value"] for a in result.optimal_trial["parameterAssignments"]}["lr"]


# ---- File, TEXT ------------------------------------------------------------------


def test_file_collector_reads_a_text_file_with_a_custom_filter(tmp_path: Path) -> None:
    collector = file_collector("/katib/mnist.log", filter={"metricsFormat": [PYTORCH_MNIST_FILTER]})
    experiment = example_experiment(["--logger=standard", "--log-path=/katib/mnist.log"], collector)

    result = run(experiment, tmp_path)

    assert [t.state for t in result.trials] == ["Succeeded"] * 3
    assert best(result) == "0.02"
    trial = result.trials[0]
    # The trial's /katib is its own folder: <trial>/fs/katib (the collector's shared volume).
    log = tmp_path / "trials" / trial.name / "fs" / "katib" / "mnist.log"
    assert log.read_text().count("metricName: accuracy") == 3
    # Values keep the text the file holds (Katib stores the matched string).
    assert metric(trial, "accuracy")["latest"] == log.read_text().splitlines()[-1].split("metricValue: ")[1][:6]
    assert metric(trial, "loss")["min"] != "unavailable"


def test_file_collector_default_filter_and_default_path(tmp_path: Path) -> None:
    # No path: Katib's default /var/log/katib/metrics.log; no filter: name=value.
    experiment = example_experiment(["--logger=text", "--log-path=/var/log/katib/metrics.log"],
                                    {"collector": {"kind": "File"}})
    result = run(experiment, tmp_path)
    assert [t.state for t in result.trials] == ["Succeeded"] * 3
    assert (tmp_path / "trials" / result.trials[0].name / "fs" / "var" / "log" / "katib" / "metrics.log").is_file()


def test_file_collector_does_not_read_the_trials_output(tmp_path: Path) -> None:
    # The trial prints accuracy=... on stdout and writes no file: the File collector sees nothing.
    result = run(example_experiment(["--logger=stdout"], file_collector("/katib/mnist.log"), maxTrialCount=1),
                 tmp_path)
    trial = result.trials[0]
    assert (trial.state, trial.reason) == ("Failed", "MetricsUnavailable")
    assert "wrote no metrics file /katib/mnist.log" in trial.message


# ---- File, JSON ------------------------------------------------------------------


def test_json_file_collector_reads_string_values_one_object_per_line(tmp_path: Path) -> None:
    collector = file_collector("/katib/mnist.json")
    collector["source"]["fileSystemPath"]["format"] = "JSON"
    result = run(example_experiment(["--logger=hypertune", "--log-path=/katib/mnist.json"], collector), tmp_path)
    assert [t.state for t in result.trials] == ["Succeeded"] * 3
    assert best(result) == "0.02"
    # "timestamp", "trial" and "global_step" are not metrics; accuracy is the string the line holds.
    accuracy = metric(result.trials[0], "accuracy")
    assert float(accuracy["max"]) == pytest.approx(result.trials[0].objective_value)


def test_json_numbers_are_skipped_as_katib_does_and_the_message_says_so(tmp_path: Path) -> None:
    collector = file_collector("/katib/mnist.json")
    collector["source"]["fileSystemPath"]["format"] = "JSON"
    experiment = example_experiment(["--logger=hypertune", "--log-path=/katib/mnist.json", "--numbers"], collector,
                                    maxTrialCount=1)
    trial = run(experiment, tmp_path).trials[0]
    assert (trial.state, trial.reason) == ("Failed", "MetricsUnavailable")
    assert "as JSON numbers" in trial.message and "only string values" in trial.message


def test_a_line_that_is_not_json_fails_the_collection(tmp_path: Path) -> None:
    collector = file_collector("/katib/mnist.json")
    collector["source"]["fileSystemPath"]["format"] = "JSON"
    # The text logger's name=value lines are not JSON.
    experiment = example_experiment(["--logger=text", "--log-path=/katib/mnist.json"], collector, maxTrialCount=1)
    trial = run(experiment, tmp_path).trials[0]
    assert trial.reason == "MetricsUnavailable" and "line 1 is not JSON" in trial.message


def test_the_file_is_followed_for_early_stopping(tmp_path: Path) -> None:
    # cmd/metricscollector/v1beta1/file-metricscollector/main.go, watchMetricsFile: the stop rule is applied
    # to the file's lines as they are written; the trial is terminated when it is met.
    spec = read_collector(file_collector("/katib/mnist.log"))
    folder = tmp_path / "trial"
    collection = TrialCollection(spec, folder, ["accuracy", "loss"], "accuracy", compile_filters(()))
    argv = [sys.executable, str(EXAMPLE_TRIAL), "--logger=text", "--log-path=/katib/mnist.log",
            "--epochs=20", "--sleep=0.3"]
    command = TrialCommand([collection.rewrite(a) for a in argv], container_env({}, None))
    rule = StoppingRule(value=0.99, start_step=2, maximize=True)

    outcome = run_trial("t", command, folder / "stdout.log", ["accuracy", "loss"], "accuracy", compile_filters(()),
                        rule, lambda _line: None, ProcessRegistry(), collection=collection)

    assert outcome.state == "EarlyStopped"
    # Stopped at the second report (start_step 2), long before 20 epochs; the observation is the whole file.
    assert 2 <= len(outcome.observation.objective_history) < 20


# ---- TensorFlowEvent --------------------------------------------------------------


def tfevent_collector(path: str) -> dict:
    return {"collector": {"kind": "TensorFlowEvent"},
            "source": {"fileSystemPath": {"path": path, "kind": "Directory"}}}


def test_tfevent_collector_reads_the_event_files_under_its_directory(tmp_path: Path) -> None:
    # As examples/v1beta1/kubeflow-training-operator/tfjob-mnist-with-summaries.yaml: the trial writes
    # /logs/train and /logs/test; the collector reads /logs/test only.
    experiment = example_experiment(["--logger=tfevent", "--log-path=/logs"], tfevent_collector("/logs/test"))
    result = run(experiment, tmp_path)
    assert [t.state for t in result.trials] == ["Succeeded"] * 3
    assert best(result) == "0.02"
    trial = result.trials[1]
    assert (tmp_path / "trials" / trial.name / "fs" / "logs" / "train").is_dir()
    # The test folder's accuracy (the train folder's is 0.05 higher), from TF2-style tensor summaries.
    assert len(trial.objective_history) == 3
    assert trial.objective_value == pytest.approx(0.9, abs=1e-4)


def test_tfevent_metric_names_with_a_folder_and_old_style_scalars(tmp_path: Path) -> None:
    experiment = example_experiment(["--logger=tfevent", "--log-path=/logs", "--old-style"],
                                    tfevent_collector("/logs"), maxTrialCount=1)
    experiment["spec"]["objective"].update(objectiveMetricName="train/accuracy", additionalMetricNames=["test/loss"])
    trial = run(experiment, tmp_path).trials[0]
    assert trial.state == "Succeeded"
    # lr 0.01: final test accuracy 0.89, the train folder's 0.05 more; simple_value is a float32.
    assert trial.objective_value == pytest.approx(0.94, abs=1e-4)
    assert metric(trial, "test/loss")["min"] != "unavailable"


def test_should_consider_takes_tag_prefixes_and_folder_suffixes() -> None:
    # tfevent_loader.py, _should_consider: tag.startswith(last part of the name) and the event file's
    # folder ends with the name's folder (any folder when the name has none).
    assert should_consider("accuracy", "accuracy", "/logs/test/events.out")
    assert should_consider("accuracy_1", "accuracy", "/logs/train/events.out")
    assert should_consider("accuracy", "test/accuracy", "/logs/test/events.out")
    assert not should_consider("accuracy", "test/accuracy", "/logs/train/events.out")
    assert not should_consider("val_accuracy", "accuracy", "/logs/events.out")


def test_tfevent_without_event_files_is_metrics_unavailable(tmp_path: Path) -> None:
    experiment = example_experiment(["--logger=stdout"], tfevent_collector("/logs/test"), maxTrialCount=1)
    trial = run(experiment, tmp_path).trials[0]
    assert trial.reason == "MetricsUnavailable"
    assert "no event file under /logs/test (locally " in trial.message and "scalar tag for accuracy" in trial.message


# ---- Custom -----------------------------------------------------------------------


def custom_collector(*extra: str, command: bool = True) -> dict:
    container = {"name": "custom-metrics-logger-and-collector", "image": "collector:latest",
                 "args": ["-m", "accuracy;loss", "-path", "/katib/mnist.log", *extra]}
    if command:
        container["command"] = ["python", str(CUSTOM_COLLECTOR)]
    return {"collector": {"kind": "Custom", "customCollector": container},
            "source": {"fileSystemPath": {"path": "/katib/mnist.log", "kind": "File"}}}


def test_custom_collector_runs_after_the_trial_and_its_output_is_read(tmp_path: Path) -> None:
    result = run(example_experiment(["--logger=standard", "--log-path=/katib/mnist.log"], custom_collector()),
                 tmp_path)
    assert [t.state for t in result.trials] == ["Succeeded"] * 3
    assert best(result) == "0.02"
    collector_log = tmp_path / "trials" / result.trials[0].name / "collector.log"
    assert collector_log.read_text().count("accuracy=") == 3


def test_a_failing_custom_collector_fails_the_trial_with_its_status(tmp_path: Path) -> None:
    experiment = example_experiment(["--logger=standard", "--log-path=/katib/mnist.log"],
                                    custom_collector("--fail"), maxTrialCount=1)
    trial = run(experiment, tmp_path).trials[0]
    assert trial.reason == "MetricsUnavailable"
    assert "Custom collector 'custom-metrics-logger-and-collector' exited with status 4" in trial.message


def test_a_custom_collector_without_a_command_is_refused(tmp_path: Path) -> None:
    # Katib's own example sets image + args only: its entrypoint is in the image, which does not run locally.
    with pytest.raises(UserError) as raised:
        run(example_experiment([], custom_collector(command=False)), tmp_path)
    message = str(raised.value)
    assert "\n" not in message and raised.value.exit_code == 2
    assert "customCollector ('custom-metrics-logger-and-collector') has no command" in message
    assert not (tmp_path / "trials").exists()


# ---- refused kinds, the mount ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "why"), [("PrometheusMetric", "scrapes an HTTP endpoint"),
                                           ("Push", "Katib's DB manager")])
def test_collectors_with_no_local_stand_in_are_refused_with_the_reason(tmp_path: Path, kind: str, why: str) -> None:
    with pytest.raises(UserError) as raised:
        run(example_experiment([], {"collector": {"kind": kind}}), tmp_path)
    message = str(raised.value)
    assert "\n" not in message and raised.value.exit_code == 2
    assert f"collector.kind is {kind!r}" in message and why in message
    assert "StdOut, File, TensorFlowEvent, Custom" in message


def test_the_mount_moves_only_paths_on_the_way_to_it(tmp_path: Path) -> None:
    mount = TrialMount("/logs/test", tmp_path)
    assert mount.rewrite("--log-path=/logs") == f"--log-path={tmp_path}/fs/logs"
    assert mount.rewrite("/logs/test/run1/") == f"{tmp_path}/fs/logs/test/run1/"
    assert mount.rewrite("--data=/data/x --out /logsx") == "--data=/data/x --out /logsx"
    assert mount.rewrite("/") == "/"
    assert read_collector(file_collector("/katib/mnist.log")).mount_path == "/katib"
    assert read_collector(tfevent_collector("/logs/test")).mount_path == "/logs/test"
