"""Katib Experiments through the Kubernetes API: one adapter, and errors a person can act on.

:class:`ExperimentsApi` is a thin adapter over the ``kubernetes`` client's
CustomObjectsApi that turns each HTTP failure into one line (Katib not installed,
forbidden, namespace missing, the admission webhook's rejection). Used by
:mod:`katib.backends.cluster`, which re-exports these names.

The ``kubernetes`` package is imported where it is first used: it takes about a
second to import, and ``study`` builds its parser from the launcher's arguments.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import urllib3

from components.core.errors import UserError
from katib.backends.local.katib_api import GROUP, VERSION

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from katib.backends.cluster.status import LaunchResult

PLURAL = "experiments"
RESOURCE = f"{PLURAL}.{GROUP}"

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
# A watch's socket may stay silent for its whole window; give it this much more before giving up.
WATCH_READ_SLACK_S = 10.0


# ---------------------------------------------------------------- errors


class LaunchError(UserError):
    """The Experiment could not be run on the cluster; the message says why and what to do."""

    def __init__(self, message: str, result: LaunchResult | None = None):
        super().__init__(message)
        self.result = result  # what was known when it stopped, if anything


class NoCredentials(LaunchError):
    """Neither a pod's service account nor a kubeconfig is available."""


class ClusterUnreachable(LaunchError):
    """The API server did not answer (connection refused, DNS, TLS, timeout)."""


class ApiFailure(LaunchError):
    """The API server answered with an error status."""

    def __init__(self, message: str, status: int, result: LaunchResult | None = None):
        super().__init__(message, result)
        self.status = status


class KatibNotInstalled(ApiFailure):
    """experiments.kubeflow.org/v1beta1 is not served: the Katib CRDs are missing."""


class Forbidden(ApiFailure):
    """RBAC does not let these credentials use Experiments in the namespace."""


class ExperimentNotFound(ApiFailure):
    """The Experiment is not there (deleted by someone, or never created)."""


class ExperimentExists(LaunchError):
    """An Experiment of that name exists with a different spec."""


class LaunchTimeout(LaunchError):
    """The Experiment did not finish in time; ``result`` holds the counts so far."""

    exit_code = 1  # the input was fine; the run gave no result


class ExperimentFailed(LaunchError):
    """Katib marked the Experiment Failed; ``result`` holds its reason, message and partial results."""

    exit_code = 1  # as `study sweep run` for a failed local Experiment


class LaunchCancelled(LaunchError):
    """The launch was told to stop (SIGTERM: the pipeline run was cancelled, or the pod evicted)."""

    exit_code = 143  # 128 + SIGTERM, as a process killed by it reports


class WatchUnavailable(Exception):
    """The watch failed or ended without news; the caller polls instead."""


# ---------------------------------------------------------------- the API adapter


class ExperimentsApi:
    """Katib Experiments in one namespace, through the kubernetes client.

    Every failure leaves as a LaunchError with one line naming what failed and what to do.
    """

    def __init__(self, api_client: ApiClient, namespace: str):
        from kubernetes import client

        self.namespace = namespace
        self.host = api_client.configuration.host
        self._objects = client.CustomObjectsApi(api_client)
        self._api_exception = client.ApiException

    def create(self, body: dict) -> dict:
        return self._call("create", body["metadata"]["name"], self._objects.create_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict:
        return self._call("get", name, self._objects.get_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, PLURAL, name)

    def delete(self, name: str, uid: str | None = None) -> None:
        """Delete it; with ``uid`` only that very object. Kubernetes checks DeleteOptions.preconditions.uid
        and answers 409 Conflict when the object of that name is another one (a later run's)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        self._call("delete", name, self._objects.delete_namespaced_custom_object,
                   GROUP, VERSION, self.namespace, PLURAL, name, body=body)

    def watch(self, name: str, seconds: float) -> Iterator[dict]:
        """The Experiment, then again at each change, for about ``seconds``.

        Raises WatchUnavailable when the watch fails, or ends without a single event:
        without a resourceVersion the API server starts every watch with an ADDED
        event for the existing object, so silence means the watch is not working.
        """
        from kubernetes import watch

        stream = watch.Watch().stream(
            self._objects.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
            field_selector=f"metadata.name={name}", timeout_seconds=max(1, math.ceil(seconds)),
            _request_timeout=(CONNECT_TIMEOUT_S, seconds + WATCH_READ_SLACK_S))
        events = 0
        try:
            for event in stream:
                events += 1
                if event["type"] == "DELETED":
                    raise ExperimentNotFound(f"experiment {self.namespace}/{name} was deleted while waiting for it",
                                             404)
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield event["raw_object"]
        except self._api_exception as err:  # an error status, or an ERROR event such as 410 Gone
            raise WatchUnavailable(f"HTTP {err.status} {_one_line(err.reason)}") from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError, KeyError, TypeError) as err:
            raise WatchUnavailable(_one_line(str(err)) or type(err).__name__) from None
        finally:
            stream.close()
        if not events:
            raise WatchUnavailable("the watch ended without reporting the Experiment")

    def _call(self, verb: str, name: str, method: Callable, *args, **kwargs) -> Any:
        try:
            return method(*args, **kwargs, _request_timeout=(CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S))
        except self._api_exception as err:
            raise api_failure(err.status, err.reason, err.body, verb=verb, namespace=self.namespace,
                              name=name, host=self.host) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            cause = getattr(err, "reason", None) or err  # MaxRetryError keeps the real cause in .reason
            raise ClusterUnreachable(f"cannot reach the Kubernetes API at {self.host}: {_one_line(str(cause))}; "
                                     "check KUBECONFIG (or the pod's network) and that the cluster is up") from None


def api_failure(status: int | None, reason: str | None, body: Any, *, verb: str, namespace: str, name: str,
                host: str) -> ApiFailure:
    """The error an API server answer means, as one line; ``body`` is its Status object (JSON)."""
    status = status or 0
    body_status = _status_object(body)
    said = _one_line(body_status.get("message") or reason or "") or "no message"
    details = body_status.get("details") or {}
    experiment = f"experiment {namespace}/{name}"
    if status == 404:
        if details.get("kind") == "namespaces":
            return ApiFailure(f"namespace {namespace} does not exist on {host}; create it (the k8s/ manifests do) "
                              "or pass --namespace", status)
        if details.get("name") == name:
            return ExperimentNotFound(f"{experiment} not found ({said})", status)
        # No object named in the answer: the resource type itself is not served.
        return KatibNotInstalled(
            f"Katib is not installed: the {RESOURCE} CRD ({VERSION}) was not found on {host} ({said}); "
            "install Katib, or point KUBECONFIG at the cluster that has it", status)
    if status == 403:
        return Forbidden(
            f"forbidden: cannot {verb} {RESOURCE} in namespace {namespace} ({said}); "
            "apply the RBAC in k8s/ to this service account or user", status)
    if status == 401:
        return ApiFailure(f"unauthorized: {host} rejected the credentials ({said}); "
                          "refresh the kubeconfig or the service account token", status)
    if status in (400, 422):  # Katib's admission webhook, or the API server's own schema check
        return ApiFailure(f"the cluster rejected {experiment}: {said}", status)
    if status == 409:
        return ApiFailure(f"{experiment} already exists ({said})", status)
    return ApiFailure(f"cannot {verb} {experiment}: HTTP {status} {_one_line(reason or '')}: {said}", status)


def _status_object(body: Any) -> dict:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body}  # e.g. a proxy's plain "404 page not found"
    return body if isinstance(body, dict) else {}


def _transient(err: LaunchError) -> bool:
    """Worth another try while waiting: the server busy or briefly out of reach."""
    if isinstance(err, ClusterUnreachable):
        return True
    return isinstance(err, ApiFailure) and (err.status in (0, 429) or err.status >= 500)


# ---------------------------------------------------------------- credentials


def load_cluster_config(context: str | None = None) -> ApiClient:
    """An ApiClient for the cluster: the pod's service account when running in one, else the kubeconfig.

    Reads files only; nothing is contacted. Raises NoCredentials (one line) when neither is usable.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    except config.ConfigException as err:
        not_in_pod = _one_line(str(err))
    # Read KUBECONFIG now: the client reads it once, at import.
    kubeconfig = os.environ.get("KUBECONFIG") or "~/.kube/config"
    paths = [os.path.expanduser(p) for p in kubeconfig.split(os.pathsep) if p]
    hint = "run inside the cluster, or set KUBECONFIG to a kubeconfig file"
    if not any(os.path.exists(p) for p in paths):
        raise NoCredentials(f"no cluster credentials: not in a pod ({not_in_pod}) and no kubeconfig at "
                            f"{kubeconfig}; {hint}")
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration,
                                persist_config=False)
    except Exception as err:  # noqa: BLE001 - YAML, a missing context, auth plugins: each raises its own kind
        raise NoCredentials(f"no cluster credentials: not in a pod ({not_in_pod}) and the kubeconfig "
                            f"{kubeconfig} is unusable ({_one_line(str(err)) or type(err).__name__}); {hint}") from None
    return client.ApiClient(configuration)


def _one_line(text: str | None) -> str:
    return " ".join(str(text or "").split())

