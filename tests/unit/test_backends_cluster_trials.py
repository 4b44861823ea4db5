"""katib.backends.cluster.trials: an Experiment's Trials read as Katib reads them, failed ones included.

Facts from kubeflow/katib v0.19.0:
- the condition types and their order of precedence: pkg/apis/controller/trials/v1beta1/trial_types.go
  (TrialConditionType) and pkg/controller.v1beta1/experiment/util/status_util.go (UpdateExperimentStatus
  files a trial as Killed, Failed, Succeeded, EarlyStopped, Running, MetricsUnavailable, else pending);
- the objective value: status_util.go getObjectiveMetricValue (the metric strategy's min, max or latest,
  with latest when min or max is "unavailable"), pkg/apis/controller/common/v1beta1/common_types.go
  (MetricStrategyType min/max/latest, Metric's string fields);
- how an Experiment's Trials are found: the label katib.kubeflow.org/experiment
  (pkg/controller.v1beta1/consts/const.go LabelExperimentName, util/labels.go TrialLabels).
Listing runs through the real kubernetes client against tests/fixtures/fake_k8s.py.
"""

from __future__ import annotations

import pytest

from katib.backends.base import TrialRow
from katib.backends.cluster import (
    ClusterBackend,
    Forbidden,
    list_trials,
    metric_value,
    trial_row,
    trial_state,
)
from katib.validate import load_experiment
from tests.fixtures.fake_k8s import FakeKubernetes, katib_trial, succeeding
from tests.fixtures.kustomize import REPO

NAME = "fmstudy-optimizer"
OBJECTIVE = {"type": "maximize", "objectiveMetricName": "val_accuracy",
             "metricStrategies": [{"name": "val_accuracy", "value": "max"}]}


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def with_conditions(*true: str, false: tuple[str, ...] = ()) -> dict:
    conditions = [{"type": t, "status": "True", "reason": f"{t}Reason"} for t in true]
    conditions += [{"type": t, "status": "False", "reason": f"{t}Reason"} for t in false]
    return {"metadata": {"name": "t"}, "status": {"conditions": conditions}}


@pytest.mark.parametrize(("true", "false", "state"), [
    (("Created",), (), "Pending"),
    (("Created", "Running"), (), "Running"),
    (("Created", "Succeeded"), ("Running",), "Succeeded"),
    (("Created", "Failed"), ("Running",), "Failed"),
    (("Created", "MetricsUnavailable"), ("Running",), "MetricsUnavailable"),
    (("Created", "Running", "EarlyStopped"), (), "EarlyStopped"),
    (("Created", "Succeeded", "Killed"), (), "Killed"),  # Killed first, as Katib files it
    (("Created", "Running", "MetricsUnavailable"), (), "Running"),  # Running before MetricsUnavailable
    (("Created",), ("Succeeded",), "Pending"),  # a condition that is False does not count
])
def test_the_state_is_the_condition_katib_files_the_trial_under(true, false, state):
    assert trial_state(with_conditions(*true, false=false)) == (state, f"{state}Reason" if state != "Pending"
                                                                else "CreatedReason")


def test_the_objective_follows_the_metric_strategy_and_falls_back_to_latest():
    observation = {"metrics": [{"name": "val_accuracy", "min": "0.5", "max": "0.9", "latest": "0.8"}]}
    assert metric_value(observation, OBJECTIVE) == 0.9
    assert metric_value(observation, {**OBJECTIVE, "metricStrategies": [{"name": "val_accuracy",
                                                                          "value": "latest"}]}) == 0.8
    assert metric_value(observation, {"type": "minimize", "objectiveMetricName": "val_accuracy"}) == 0.5
    only_latest = {"metrics": [{"name": "val_accuracy", "min": "unavailable", "max": "unavailable",
                                "latest": "0.7"}]}
    assert metric_value(only_latest, OBJECTIVE) == 0.7
    unavailable = {"metrics": [{"name": "val_accuracy", "min": "unavailable", "max": "unavailable",
                                "latest": "unavailable"}]}
    assert metric_value(unavailable, OBJECTIVE) is None
    assert metric_value(None, OBJECTIVE) is None


def test_a_failed_trial_is_a_row_with_its_state_reason_and_no_objective():
    failed = katib_trial(NAME, 2, {"optimizer": "Ftrl"}, "Failed", objective=None)
    assert trial_row(failed, OBJECTIVE) == TrialRow(failed["metadata"]["name"], "Failed",
                                                    "TrialFailed. Job reason: BackoffLimitExceeded",
                                                    {"optimizer": "Ftrl"}, None)
    # A trial's own spec.objective (Katib copies the Experiment's) decides the strategy.
    succeeded = katib_trial(NAME, 1, {"optimizer": "Nadam"}, objective=("val_accuracy", 0.93))
    succeeded["spec"]["objective"] = {**OBJECTIVE, "metricStrategies": [{"name": "val_accuracy", "value": "min"}]}
    assert trial_row(succeeded, OBJECTIVE).objective == pytest.approx(0.81)


def test_only_the_experiments_own_trials_are_listed_by_katibs_label():
    other = "fmstudy-activations"
    experiment = load_experiment(str(REPO / "katib" / "experiments" / "optimizer.yaml"))
    trials = {NAME: [katib_trial(NAME, 1, {"optimizer": "Nadam"})],
              other: [katib_trial(other, 1, {"activation1": "relu"})]}
    with FakeKubernetes(namespaces=("fmstudy", "elsewhere"), trials=trials) as fake:
        fake.add_experiment(experiment)
        fake.add_experiment({**experiment, "metadata": {**experiment["metadata"], "name": other}})
        fake.add_experiment({**experiment, "metadata": {**experiment["metadata"], "namespace": "elsewhere"}})
        listed = list_trials(fake.api_client(), "fmstudy", NAME)
        (request,) = fake.calls("GET")
    assert [t["metadata"]["name"] for t in listed] == [f"{NAME}-00000001"]
    assert listed[0]["metadata"]["labels"]["katib.kubeflow.org/experiment"] == NAME
    assert listed[0]["metadata"]["ownerReferences"][0]["kind"] == "Experiment"
    assert request.path == "/apis/kubeflow.org/v1beta1/namespaces/fmstudy/trials"
    assert request.query["labelSelector"] == f"katib.kubeflow.org/experiment={NAME}"


def test_trials_that_may_not_be_listed_are_one_line_naming_trials():
    with FakeKubernetes(forbidden_trials=frozenset({"list"})) as fake, pytest.raises(Forbidden) as caught:
        list_trials(fake.api_client(), "fmstudy", NAME)
    message = str(caught.value)
    assert message.startswith("forbidden: cannot list trials.kubeflow.org in namespace fmstudy (")
    assert "apply the RBAC in k8s/" in message and "\n" not in message


def test_with_delete_the_rows_are_read_before_the_trials_go_with_the_experiment():
    experiment = load_experiment(str(REPO / "katib" / "experiments" / "optimizer.yaml"))
    trials = [katib_trial(NAME, 1, {"optimizer": "Nadam"}),
              katib_trial(NAME, 2, {"optimizer": "Ftrl"}, "Failed", objective=None)]
    with FakeKubernetes(steps=succeeding(NAME, {"optimizer": "Nadam"}), trials={NAME: trials}) as fake:
        outcome = ClusterBackend(api_client=fake.api_client(), poll_s=0.02, delete_after=True).run(
            experiment, log=lambda line: None)
        assert fake.experiments == {} and fake.trial_objects == {}  # deleted, its Trials with it
    assert [(t.state, t.objective) for t in outcome.trials] == [("Succeeded", 0.9305), ("Failed", None)]
    assert (outcome.condition, outcome.best_trial, outcome.where) == (
        "Succeeded", f"{NAME}-00000001", f"experiment fmstudy/{NAME}")
