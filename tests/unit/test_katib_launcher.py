"""The Katib launcher against a local API server (tests/fixtures/fake_k8s.py), through the real kubernetes client.

Every test talks HTTP to 127.0.0.1; the server answers with Katib-shaped
Experiments and kube-apiserver-shaped errors. Nothing reaches a real cluster:
the tests that load credentials point KUBECONFIG at a temporary file and clear
the in-cluster environment.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import pytest
import yaml

from components.core.errors import UserError
from katib.backends import cluster as launcher
from katib.backends.cluster import (
    ClusterUnreachable,
    ExperimentExists,
    ExperimentFailed,
    Forbidden,
    KatibNotInstalled,
    LaunchError,
    LaunchTimeout,
    NoCredentials,
    launch_experiment,
    load_cluster_config,
    parse_duration,
    spec_difference,
)
from katib.validate import ExperimentInvalid, load_experiment
from pipelines import cli
from tests.conftest import free_port
from tests.fixtures.fake_k8s import (
    IDENTITY,
    FakeKubernetes,
    failing,
    katib_status,
    never_finishing,
    optimal_trial,
    succeeding,
)

REPO = Path(__file__).resolve().parents[2]
OPTIMIZER_YAML = REPO / "katib" / "experiments" / "optimizer.yaml"
NAME = "fmstudy-optimizer"
WINNER = {"optimizer": "Nadam"}
EXPERIMENTS_PATH = "/apis/kubeflow.org/v1beta1/namespaces/fmstudy/experiments"


@pytest.fixture
def experiment() -> dict:
    return load_experiment(str(OPTIMIZER_YAML))


@pytest.fixture
def serve():
    """Start a FakeKubernetes with the given behaviour; stopped when the test ends."""
    servers = []

    def start(**behaviour) -> FakeKubernetes:
        fake = FakeKubernetes(**behaviour).__enter__()
        servers.append(fake)
        return fake

    yield start
    for fake in servers:
        fake.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    """No test may find real credentials: no in-cluster environment, a kubeconfig that does not exist."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def launch(fake: FakeKubernetes, experiment: dict, lines: list[str] | None = None, **options):
    options = {"timeout_s": 10.0, "poll_s": 0.02, **options}
    log = lines.append if lines is not None else (lambda line: None)
    return launch_experiment(experiment, api_client=fake.api_client(), log=log, **options)


def assert_one_line(err: Exception) -> None:
    assert str(err) and "\n" not in str(err)


# ---------------------------------------------------------------- success


def test_success_returns_the_optimal_trial_from_one_watch(serve, experiment):
    steps = succeeding(NAME, WINNER)
    fake = serve(steps=steps)

    result = launch(fake, experiment)

    assert result.condition == "Succeeded" and result.succeeded
    assert result.reason == "ExperimentMaxTrialsReached"
    assert result.assignments == WINNER
    assert result.optimal_trial == steps[-1]["currentOptimalTrial"]
    assert result.objective == "val_accuracy" and result.objective_value == pytest.approx(0.9305)  # max: maximize
    assert result.trials["succeeded"] == 8 and result.trials["failed"] == 0 and result.trials["running"] == 0
    assert result.sweep == "optimizer" and result.settings() == {"optimizer": "Nadam"}
    assert not result.reused and not result.deleted
    # One POST, one watch; no polling, no delete.
    assert [(r.method, r.path, r.watch) for r in fake.requests] == [
        ("POST", EXPERIMENTS_PATH, False), ("GET", EXPERIMENTS_PATH, True)]
    watch = fake.requests[1]
    assert watch.query["fieldSelector"] == f"metadata.name={NAME}"
    assert 1 <= int(watch.query["timeoutSeconds"]) <= 10
    posted = fake.requests[0].body
    assert posted["metadata"]["namespace"] == "fmstudy" and posted["spec"] == experiment["spec"]


def test_progress_is_logged_once_per_change_of_condition_or_counts(serve, experiment):
    running = katib_status(NAME, "Running", running=3)
    best = optimal_trial(NAME, WINNER, ("val_accuracy", 0.9305))
    two_done = katib_status(NAME, "Running", succeeded=2, running=3, optimal=best)
    # Repeated statuses (each read again by polling) log nothing new.
    steps = [katib_status(NAME, "Created"), running, running, running, two_done, two_done,
             katib_status(NAME, "Succeeded", succeeded=8, optimal=best, reason="ExperimentMaxTrialsReached")]
    fake = serve(steps=steps, watch="error")  # polling reads every step, repeats included
    lines: list[str] = []

    launch(fake, experiment, lines)

    progress = [line for line in lines if line.startswith(f"katib: fmstudy/{NAME} ")]
    assert progress == [
        f"katib: fmstudy/{NAME} Created: 0 succeeded, 0 failed, 0 running",
        f"katib: fmstudy/{NAME} Running: 0 succeeded, 0 failed, 3 running",
        f"katib: fmstudy/{NAME} Running: 2 succeeded, 0 failed, 3 running; "
        f"best val_accuracy=0.9305 ({best['bestTrialName']})",
        f"katib: fmstudy/{NAME} Succeeded: 8 succeeded, 0 failed, 0 running; "
        f"best val_accuracy=0.9305 ({best['bestTrialName']})",
    ]
    assert len(fake.calls("GET", watch=False)) == len(steps)


@pytest.mark.parametrize("watch", ["error", "gone", "empty", "reset"])
def test_a_failing_watch_falls_back_to_polling(serve, experiment, watch):
    fake = serve(steps=succeeding(NAME, WINNER), watch=watch)
    lines: list[str] = []

    result = launch(fake, experiment, lines)

    assert result.assignments == WINNER
    assert any(line.startswith("katib: watch unavailable (") and "polling every 0.02 s" in line for line in lines)
    assert len(fake.calls("GET", watch=True)) == 1  # polling from then on, no second watch
    assert fake.calls("GET", watch=False)


def test_poll_errors_from_a_busy_server_are_retried(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER), watch="error", flaky_gets=3)
    lines: list[str] = []

    result = launch(fake, experiment, lines)

    assert result.assignments == WINNER
    retries = [line for line in lines if line.endswith("; retrying")]
    assert len(retries) == 1 and "HTTP 503" in retries[0]  # the same problem is logged once


def test_delete_after_deletes_the_experiment(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER))
    lines: list[str] = []

    result = launch(fake, experiment, lines, delete_after=True)

    assert result.deleted and result.assignments == WINNER
    assert [r.path for r in fake.calls("DELETE")] == [f"{EXPERIMENTS_PATH}/{NAME}"]
    assert fake.experiments == {}
    assert f"katib: deleted experiment fmstudy/{NAME}" in lines


def test_namespace_override_and_server_fields_are_handled(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER), namespaces=("team-a",))
    copied = copy.deepcopy(experiment)  # as `kubectl get -o yaml` gives it
    copied["metadata"].update(resourceVersion="123", uid="abc", creationTimestamp="2024-01-01T00:00:00Z")
    copied["status"] = katib_status(NAME, "Running", running=1)

    result = launch(fake, copied, namespace="team-a")

    assert result.namespace == "team-a" and result.assignments == WINNER
    post = fake.calls("POST")[0]
    assert post.path == "/apis/kubeflow.org/v1beta1/namespaces/team-a/experiments"
    assert post.body["metadata"]["namespace"] == "team-a"
    assert "status" not in post.body and "resourceVersion" not in post.body["metadata"]


# ---------------------------------------------------------------- an Experiment that exists


def test_an_existing_experiment_with_the_same_spec_is_waited_on(serve, experiment):
    steps = succeeding(NAME, WINNER)
    fake = serve()
    fake.add_experiment(experiment, steps)  # defaulted by the fake's webhook: extra fields, same choices
    lines: list[str] = []

    result = launch(fake, experiment, lines)

    assert result.reused and result.assignments == WINNER
    assert f"katib: experiment fmstudy/{NAME} already exists with the same spec; waiting on it" in lines
    assert len(fake.calls("POST")) == 1  # the 409


def test_an_existing_experiment_with_another_spec_is_refused(serve, experiment):
    fake = serve()
    other = copy.deepcopy(experiment)
    other["spec"]["maxTrialCount"] = 4
    fake.add_experiment(other, succeeding(NAME, WINNER))

    with pytest.raises(ExperimentExists) as caught:
        launch(fake, experiment)

    assert_one_line(caught.value)
    assert "spec.maxTrialCount is 4 there, 8 here" in str(caught.value)
    assert "--replace" in str(caught.value)
    assert not fake.calls("DELETE")


def test_replace_existing_deletes_waits_for_it_to_go_and_creates_anew(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER), deletion_gets=2)
    other = copy.deepcopy(experiment)
    other["spec"]["maxTrialCount"] = 4
    fake.add_experiment(other, [katib_status(NAME, "Running", running=3)])

    result = launch(fake, experiment, replace_existing=True)

    assert result.assignments == WINNER and not result.reused
    assert [r.method for r in fake.requests if not r.watch] == ["POST", "GET", "DELETE", "GET", "GET", "GET", "POST"]
    assert fake.experiments[("fmstudy", NAME)].obj["spec"]["maxTrialCount"] == 8


# ---------------------------------------------------------------- failures


def test_a_failed_experiment_raises_with_its_reason_and_partial_results(serve, experiment):
    best = optimal_trial(NAME, {"optimizer": "SGD"}, ("val_accuracy", 0.81))
    fake = serve(steps=failing(NAME, partial=best))

    with pytest.raises(ExperimentFailed) as caught:
        launch(fake, experiment)

    err = caught.value
    assert_one_line(err)
    assert str(err) == (f"experiment fmstudy/{NAME} failed: ExperimentFailed: Experiment has failed because max "
                        "failed count has reached (trials: 1 succeeded, 3 failed, 0 running)")
    assert isinstance(err, UserError) and err.exit_code == 1
    assert err.result.condition == "Failed" and err.result.reason == "ExperimentFailed"
    assert err.result.trials["failed"] == 3 and err.result.assignments == {"optimizer": "SGD"}


def test_a_timeout_raises_within_two_seconds_with_the_counts_so_far(serve, experiment):
    fake = serve(steps=never_finishing(NAME))

    started = time.monotonic()
    with pytest.raises(LaunchTimeout) as caught:
        launch(fake, experiment, timeout_s=0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    err = caught.value
    assert_one_line(err)
    assert f"experiment fmstudy/{NAME} did not finish within 0.5 s" in str(err)
    assert "(Running: trials: 0 succeeded, 0 failed, 3 running, 5 pending)" in str(err)
    assert "launching it again waits on it" in str(err)
    assert err.result.trials["running"] == 3 and err.result.trials["pending"] == 5
    assert not fake.calls("DELETE")


def test_a_timeout_in_polling_mode_also_ends_on_time(serve, experiment):
    fake = serve(steps=never_finishing(NAME), watch="error")

    started = time.monotonic()
    with pytest.raises(LaunchTimeout):
        launch(fake, experiment, timeout_s=0.5, poll_s=0.1)
    assert time.monotonic() - started < 2.0


def test_a_timeout_with_delete_after_deletes(serve, experiment):
    fake = serve(steps=never_finishing(NAME))

    with pytest.raises(LaunchTimeout) as caught:
        launch(fake, experiment, timeout_s=0.3, delete_after=True)

    assert "it was deleted (--delete)" in str(caught.value)
    assert len(fake.calls("DELETE")) == 1 and fake.experiments == {}


def test_success_without_an_optimal_trial_is_an_error(serve, experiment):
    steps = [katib_status(NAME, "Succeeded", failed=2, reason="ExperimentMaxTrialsReached")]
    fake = serve(steps=steps)

    with pytest.raises(LaunchError) as caught:
        launch(fake, experiment)

    assert_one_line(caught.value)
    assert "succeeded (ExperimentMaxTrialsReached) but has no optimal trial: no trial reported val_accuracy" in str(
        caught.value)
    assert f"katib.kubeflow.org/experiment={NAME}" in str(caught.value)


def test_forbidden_says_who_cannot_do_what_where(serve, experiment):
    fake = serve(forbidden=frozenset({"create"}))

    with pytest.raises(Forbidden) as caught:
        launch(fake, experiment)

    err = caught.value
    assert_one_line(err)
    assert str(err).startswith("forbidden: cannot create experiments.kubeflow.org in namespace fmstudy (")
    assert IDENTITY in str(err) and "RBAC in k8s/" in str(err)
    assert err.exit_code == 2 and err.status == 403


def test_forbidden_watch_and_get_while_waiting(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER), forbidden=frozenset({"watch", "get"}))

    with pytest.raises(Forbidden) as caught:
        launch(fake, experiment)

    assert str(caught.value).startswith("forbidden: cannot get experiments.kubeflow.org in namespace fmstudy")


def test_missing_katib_crd(serve, experiment):
    fake = serve(katib_installed=False)

    with pytest.raises(KatibNotInstalled) as caught:
        launch(fake, experiment)

    err = caught.value
    assert_one_line(err)
    assert str(err).startswith("Katib is not installed: the experiments.kubeflow.org CRD (v1beta1) was not found on "
                               f"{fake.url} (the server could not find the requested resource)")
    assert err.exit_code == 2
    assert len(fake.requests) == 1


def test_missing_namespace(serve, experiment):
    fake = serve(namespaces=("kubeflow",))

    with pytest.raises(LaunchError) as caught:
        launch(fake, experiment)

    assert str(caught.value).startswith(f"namespace fmstudy does not exist on {fake.url}")


def test_a_webhook_rejection_is_passed_on(serve, experiment):
    reason = ('Cannot create the Experiment "fmstudy-optimizer" in namespace "fmstudy": the namespace lacks label '
              '"katib.kubeflow.org/metrics-collector-injection: enabled"')
    fake = serve(webhook_denies=reason)

    with pytest.raises(LaunchError) as caught:
        launch(fake, experiment)

    assert_one_line(caught.value)
    assert str(caught.value) == (f"the cluster rejected experiment fmstudy/{NAME}: admission webhook "
                                 f'"validator.experiment.katib.kubeflow.org" denied the request: {reason}')
    assert caught.value.exit_code == 2


def test_an_unreachable_api_server(experiment):
    from kubernetes import client

    api_client = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{free_port()}"))

    with pytest.raises(ClusterUnreachable) as caught:
        launch_experiment(experiment, api_client=api_client, timeout_s=5, log=lambda line: None)

    assert_one_line(caught.value)
    assert str(caught.value).startswith("cannot reach the Kubernetes API at http://127.0.0.1:")


def test_an_invalid_experiment_makes_no_request(serve, experiment):
    fake = serve(steps=succeeding(NAME, WINNER))
    broken = copy.deepcopy(experiment)
    broken["spec"]["objective"]["type"] = "max"

    with pytest.raises(ExperimentInvalid) as caught:
        launch(fake, broken)

    assert "spec.objective.type" in str(caught.value)
    assert fake.requests == []


def test_an_invalid_experiment_is_reported_before_missing_credentials(experiment):
    broken = copy.deepcopy(experiment)
    broken["spec"]["algorithm"]["algorithmName"] = "gridd"

    with pytest.raises(ExperimentInvalid):
        launch_experiment(broken, log=lambda line: None)


# ---------------------------------------------------------------- credentials


def test_no_credentials_is_one_line(experiment, tmp_path):
    with pytest.raises(NoCredentials) as caught:
        load_cluster_config()

    err = caught.value
    assert_one_line(err)
    assert str(err).startswith("no cluster credentials: not in a pod (Service host/port is not set.) and no "
                               f"kubeconfig at {tmp_path / 'no-kubeconfig'}")
    assert err.exit_code == 2
    with pytest.raises(NoCredentials):
        launch_experiment(experiment, log=lambda line: None)


def test_an_unusable_kubeconfig_is_one_line(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    with pytest.raises(NoCredentials) as caught:
        load_cluster_config()

    assert_one_line(caught.value)
    assert f"the kubeconfig {kubeconfig} is unusable (" in str(caught.value)


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": "fmstudy"}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
    }))
    return path


# ---------------------------------------------------------------- command line


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    launcher.add_arguments(parser)
    return parser.parse_args(argv)


def test_run_from_args_uses_the_kubeconfig_and_writes_outputs(serve, monkeypatch, tmp_path):
    fake = serve(steps=succeeding(NAME, WINNER))
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", fake.url)))
    outputs = tmp_path / "out" / "winner.json"
    lines: list[str] = []

    status = launcher.run_from_args(parse(str(OPTIMIZER_YAML), "--timeout", "10", "--poll", "0.02", "--delete",
                                          "--outputs-json", str(outputs)), log=lines.append)

    assert status == 0
    written = json.loads(outputs.read_text())
    assert written["assignments"] == WINNER and written["settings"] == {"optimizer": "Nadam"}
    assert written["optimal_trial"]["bestTrialName"] == f"{NAME}-00000001"
    assert written["condition"] == "Succeeded" and written["trials"]["succeeded"] == 8
    assert lines[-1] == f"katib: fmstudy/{NAME} Succeeded (ExperimentMaxTrialsReached): optimizer=Nadam; " \
                        "val_accuracy=0.9305"
    assert fake.calls("DELETE")


def test_study_katib_launch_exits_1_with_one_line_for_a_failed_experiment(serve, monkeypatch, tmp_path, capsys):
    fake = serve(steps=failing(NAME))
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", fake.url)))
    outputs = tmp_path / "winner.json"

    status = cli.main(["katib", "launch", str(OPTIMIZER_YAML), "--poll", "0.02", "--outputs-json", str(outputs)])

    assert status == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: experiment fmstudy/{NAME} failed: ExperimentFailed:")
    assert not outputs.exists()  # a failed launch leaves no artifact that claims a winner


def test_study_katib_launch_exits_2_without_credentials(capsys):
    assert cli.main(["katib", "launch", str(OPTIMIZER_YAML)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: no cluster credentials: ")


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("6h", 21600), ("0.5", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "six hours", "5d"])
def test_parse_duration_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


# ---------------------------------------------------------------- spec comparison


def test_spec_difference_ignores_what_katib_defaults_and_names_what_differs():
    ours = {"objective": {"type": "maximize", "objectiveMetricName": "val_accuracy",
                          "metricStrategies": [{"name": "val_accuracy", "value": "max"}]},
            "parameters": [{"name": "optimizer", "feasibleSpace": {"list": ["Adam", "SGD"]}}]}
    defaulted = copy.deepcopy(ours)
    defaulted["resumePolicy"] = "Never"
    defaulted["objective"]["metricStrategies"].append({"name": "loss", "value": "max"})
    defaulted["parameters"][0]["feasibleSpace"]["distribution"] = "uniform"
    assert spec_difference(ours, defaulted) is None

    changed = copy.deepcopy(defaulted)
    changed["parameters"][0]["feasibleSpace"]["list"] = ["Adam"]
    assert spec_difference(ours, changed) == "spec.parameters[0].feasibleSpace.list has 1 items there, 2 here"
    changed = copy.deepcopy(defaulted)
    changed["objective"]["metricStrategies"][0]["value"] = "latest"
    assert spec_difference(ours, changed) == (
        'spec.objective.metricStrategies.val_accuracy is "latest" there, "max" here')
