"""An Experiment's Trials, read from the API server into the summary's rows, failed ones included.

What Katib's controller makes (kubeflow/katib v0.19.0):

- each Trial lives in the Experiment's namespace and carries the Experiment's labels plus
  ``katib.kubeflow.org/experiment: <name>`` (pkg/controller.v1beta1/util/labels.go TrialLabels,
  pkg/controller.v1beta1/consts/const.go LabelExperimentName); the controller itself finds an
  Experiment's Trials by that label (experiment/experiment_controller.go ReconcileExperiment);
- spec.objective is the Experiment's objective, spec.parameterAssignments the suggestion's
  (experiment/experiment_controller_util.go getTrialInstance);
- status.conditions hold Created, Running, Succeeded, Failed, Killed, EarlyStopped and
  MetricsUnavailable (pkg/apis/controller/trials/v1beta1/trial_types.go), each with a reason
  such as TrialFailed or MetricsUnavailable (trial/trial_controller_status.go);
- status.observation.metrics hold min, max and latest per metric, as strings
  (pkg/apis/controller/common/v1beta1/common_types.go Metric).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import urllib3

from katib.backends.base import TrialRow
from katib.backends.cluster.api import (
    CONNECT_TIMEOUT_S,
    GROUP,
    REQUEST_TIMEOUT_S,
    VERSION,
    ClusterUnreachable,
    Forbidden,
    _one_line,
    _status_object,
    api_failure,
)
from katib.backends.cluster.status import metric_value, parameter_assignments

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TRIAL_PLURAL = "trials"
TRIAL_RESOURCE = f"{TRIAL_PLURAL}.{GROUP}"
# The label Katib puts on an Experiment's Trials.
TRIAL_EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"

# Katib files a Trial under the first of these conditions that is True, in this order, and one
# with none of them as pending (UpdateExperimentStatus, pkg/controller.v1beta1/experiment/util/status_util.go).
TRIAL_STATES = ("Killed", "Failed", "Succeeded", "EarlyStopped", "Running", "MetricsUnavailable")
PENDING = "Pending"


def list_trials(api_client: ApiClient, namespace: str, experiment: str) -> list[dict]:
    """The Experiment's Trials, found by Katib's label, as the controller finds them:
    GET /apis/kubeflow.org/v1beta1/namespaces/<namespace>/trials?labelSelector=katib.kubeflow.org/experiment=<name>."""
    from kubernetes import client

    host = api_client.configuration.host
    try:
        answer = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            GROUP, VERSION, namespace, TRIAL_PLURAL, label_selector=f"{TRIAL_EXPERIMENT_LABEL}={experiment}",
            _request_timeout=(CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S))
    except client.ApiException as err:
        if err.status == 403:  # api_failure would name experiments; this request is for trials
            said = _one_line(_status_object(err.body).get("message") or err.reason) or "no message"
            raise Forbidden(f"forbidden: cannot list {TRIAL_RESOURCE} in namespace {namespace} ({said}); "
                            "apply the RBAC in k8s/ to this service account or user", 403) from None
        raise api_failure(err.status, err.reason, err.body, verb="list the trials of", namespace=namespace,
                          name=experiment, host=host) from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        cause = getattr(err, "reason", None) or err  # MaxRetryError keeps the real cause in .reason
        raise ClusterUnreachable(f"cannot reach the Kubernetes API at {host}: {_one_line(str(cause))}; "
                                 "check KUBECONFIG (or the pod's network) and that the cluster is up") from None
    return answer.get("items") or []


def trial_state(trial: dict) -> tuple[str, str]:
    """(state, reason): the condition Katib files the Trial under, or Pending with the reason it was created."""
    true = {c.get("type"): c for c in (trial.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}
    for state in TRIAL_STATES:
        if state in true:
            return state, true[state].get("reason", "")
    return PENDING, (true.get("Created") or {}).get("reason", "")


def trial_row(trial: dict, objective: dict) -> TrialRow:
    """One Trial as a row; its objective by its own spec.objective (the Experiment's ``objective`` if absent)."""
    spec = trial.get("spec") or {}
    state, reason = trial_state(trial)
    return TrialRow(
        name=(trial.get("metadata") or {}).get("name", ""),
        state=state,
        reason=reason,
        assignments=parameter_assignments(spec),
        objective=metric_value((trial.get("status") or {}).get("observation"), spec.get("objective") or objective),
    )


def experiment_trial_rows(api_client: ApiClient, namespace: str, experiment: str, objective: dict) -> list[TrialRow]:
    """A row per Trial of the Experiment, in the API server's order (by name)."""
    return [trial_row(trial, objective) for trial in list_trials(api_client, namespace, experiment)]
