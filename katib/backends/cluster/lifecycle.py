"""One Experiment's life on the cluster: create it (or wait on the same one), wait for it, clean up.

Waiting prefers a watch (one long request, an event per status change) and falls back
to polling when the watch does not work: a proxy that cuts long requests, RBAC without
the watch verb, 410 Gone.

An Experiment that already exists with the same spec is waited on, not created
again, so a launch that timed out or was interrupted resumes when run again.

When the launch ends without a winner (timeout, Katib's Failed, SIGTERM from a
cancelled pipeline run) the Experiment is kept or deleted, as ``on_stop`` says,
and only the very object this launch created or waited on (uid precondition).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from components.core.errors import UserError
from components.core.settings import K8S_NAMESPACE
from katib.backends.cluster.api import (
    ApiFailure,
    ExperimentExists,
    ExperimentFailed,
    ExperimentNotFound,
    ExperimentsApi,
    LaunchCancelled,
    LaunchError,
    LaunchTimeout,
    WatchUnavailable,
    _one_line,
    _transient,
    load_cluster_config,
)
from katib.backends.cluster.status import (
    FAILED,
    SUCCEEDED,
    LaunchResult,
    Log,
    ProgressLog,
    counts_summary,
    experiment_result,
)
from katib.backends.cluster.trials import TRIAL_EXPERIMENT_LABEL, experiment_trial_rows
from katib.validate import check_experiment

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

DEFAULT_TIMEOUT_S = 6 * 3600.0
# What happens to the Experiment when the launch ends without a winner (timeout, Katib's
# Failed, SIGTERM): "delete" removes it and its trials, "keep" leaves it to Katib.
ON_STOP_CHOICES = ("keep", "delete")
DEFAULT_POLL_S = 10.0
# One watch request lasts at most this long, then a fresh one starts: API servers
# and proxies end long requests on their own schedule anyway.
WATCH_WINDOW_S = 300.0

# Fields the API server sets; a manifest copied from `kubectl get -o yaml` carries them, and a
# create with a resourceVersion is refused.
SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


# ---------------------------------------------------------------- launching


def launch_experiment(experiment: dict, *, timeout_s: float = DEFAULT_TIMEOUT_S, poll_s: float = DEFAULT_POLL_S,
                      delete_after: bool = False, api_client: ApiClient | None = None, log: Log = print,
                      replace_existing: bool = False, namespace: str | None = None,
                      on_stop: str = "keep", list_trials: bool = False) -> LaunchResult:
    """Create the Experiment, wait until Katib marks it Succeeded, return its best trial.

    ``namespace`` overrides metadata.namespace (default: components.core.settings.K8S_NAMESPACE).
    An existing Experiment of the same name is waited on when its spec matches, else
    refused (ExperimentExists) unless ``replace_existing``, which deletes it first.
    Raises ExperimentFailed when Katib marks it Failed, LaunchTimeout after
    ``timeout_s``, LaunchCancelled on SIGTERM. ``on_stop`` ("keep" or "delete") says what
    happens to the Experiment in those three cases; with ``delete_after`` it is deleted
    in every case once the wait ends. Only the object this launch created or waited on
    is ever deleted (by uid), never a namesake created since. With ``list_trials`` the
    result's ``trial_rows`` hold the Experiment's Trials, read once it succeeded (before
    a ``delete_after`` takes them with it).
    """
    if on_stop not in ON_STOP_CHOICES:
        raise UserError(f"on_stop {on_stop!r}: expected one of {', '.join(ON_STOP_CHOICES)}")
    check_experiment(experiment)  # every problem at once, before anything touches the cluster
    deadline = time.monotonic() + timeout_s
    body = creation_body(experiment, namespace)
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    api_client = api_client or load_cluster_config()
    api = ExperimentsApi(api_client, namespace)
    delete_on_stop = delete_after or on_stop == "delete"
    where = f"experiment {namespace}/{name}"

    with _sigterm_cancels():
        uid = None
        try:
            current, reused = create_or_reuse(api, body, replace_existing=replace_existing, deadline=deadline,
                                              poll_s=poll_s, log=log)
            uid = (current.get("metadata") or {}).get("uid")
            latest = wait_for_experiment(api, name, deadline=deadline, poll_s=poll_s, log=log) or current
        except (LaunchCancelled, KeyboardInterrupt) as err:
            why = str(err) if isinstance(err, LaunchCancelled) else "interrupted"
            _, after = _stop(api, name, uid, body, delete_on_stop, why, log)
            raise LaunchCancelled(f"{where}: the launch was stopped ({why}) before it finished; {after}") from None
        result = experiment_result(latest, reused=reused)
        if result.succeeded:
            if list_trials:
                objective = (latest.get("spec") or {}).get("objective") or {}
                result.trial_rows = experiment_trial_rows(api_client, namespace, name, objective)
            if delete_after:
                result.deleted = delete_own(api, name, uid, log, "it finished (--delete)")
        else:
            why = f"it {result.condition.lower()}" if result.condition == FAILED else "it ran past the timeout"
            result.deleted, _ = _stop(api, name, uid, body, delete_on_stop, why, log)
    return _finish(result, timeout_s, deleted_by="--delete" if delete_after else "on_stop=delete")


@contextlib.contextmanager
def _sigterm_cancels() -> Iterator[None]:
    """SIGTERM (a cancelled KFP run, an evicted pod) raises LaunchCancelled, so the cleanup runs.

    Once: a second SIGTERM during the cleanup is ignored until it ends (the kubelet's
    SIGKILL after the grace period still ends everything). Signals reach only the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise LaunchCancelled(f"received {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(api: ExperimentsApi, name: str, uid: str | None, body: dict, delete: bool, why: str,
          log: Log) -> tuple[bool, str]:
    """Delete the Experiment or leave it, as asked; log it. Returns (deleted, what happened as a clause)."""
    where = f"experiment {api.namespace}/{name}"
    if uid is None:  # stopped while creating it: ours only if it is exactly what we were creating
        try:
            found = api.get(name)
        except LaunchError:
            return False, f"{where} was not created"
        if spec_difference(body.get("spec"), found.get("spec")) is not None or (
                (found.get("metadata") or {}).get("labels") != (body.get("metadata") or {}).get("labels")):
            return False, f"{where} is not this launch's; left alone"
        uid = (found.get("metadata") or {}).get("uid")
    if delete:
        deleted = delete_own(api, name, uid, log, why)
        return deleted, f"{where} was deleted with its trials" if deleted else f"{where} was not deleted"
    log(f"katib: keeping {where} after {why} (on_stop=keep): it runs on, and launching it again waits on it")
    return False, f"{where} was kept (on_stop=keep)"


def _finish(result: LaunchResult, timeout_s: float, deleted_by: str = "--delete") -> LaunchResult:
    """The result when it holds a winner, else the error that says why not."""
    where = f"experiment {result.namespace}/{result.name}"
    counts = counts_summary(result.trials)
    if result.condition == FAILED:
        raise ExperimentFailed(f"{where} failed: {result.reason or 'no reason given'}: "
                               f"{_one_line(result.message) or 'no message'} ({counts})", result)
    if result.condition != SUCCEEDED:
        after = (f"it was deleted ({deleted_by})" if result.deleted else
                 "it keeps running on the cluster, and launching it again waits on it")
        raise LaunchTimeout(f"{where} did not finish within {_duration_text(timeout_s)} "
                            f"({result.condition or 'no status yet'}: {counts}); {after}", result)
    if not result.assignments:
        raise LaunchError(f"{where} succeeded ({result.reason}) but has no optimal trial: no trial reported "
                          f"{result.objective or 'the objective metric'}; see the trials' logs "
                          f"(kubectl -n {result.namespace} get trials -l {TRIAL_EXPERIMENT_LABEL}={result.name})",
                          result)
    return result


def creation_body(experiment: dict, namespace: str | None = None) -> dict:
    """The Experiment to POST: a JSON-clean copy in its namespace, without status or server-set metadata."""
    body = json.loads(json.dumps(experiment))
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    metadata["namespace"] = namespace or metadata.get("namespace") or K8S_NAMESPACE
    return body


def create_or_reuse(api: ExperimentsApi, body: dict, *, replace_existing: bool, deadline: float, poll_s: float,
                    log: Log) -> tuple[dict, bool]:
    """Create the Experiment; on 409, reuse it if its spec matches. Returns (the object, reused)."""
    name = body["metadata"]["name"]
    where = f"experiment {api.namespace}/{name}"
    try:
        created = api.create(body)
    except ApiFailure as err:
        if err.status != 409:
            raise
    else:
        log(f"katib: created {where} on {api.host}")
        return created, False

    existing = api.get(name)
    being_deleted = bool((existing.get("metadata") or {}).get("deletionTimestamp"))
    difference = spec_difference(body.get("spec"), existing.get("spec"))
    if not replace_existing and not being_deleted:
        if difference is None:
            log(f"katib: {where} already exists with the same spec; waiting on it")
            return existing, True
        raise ExperimentExists(f"{where} already exists with a different spec ({difference}); delete it "
                               f"(kubectl -n {api.namespace} delete experiment {name}) or pass --replace")
    if not being_deleted:
        log(f"katib: deleting the existing {where} (--replace)")
        api.delete(name)
    wait_until_gone(api, name, deadline=deadline, poll_s=poll_s)
    created = api.create(body)
    log(f"katib: created {where} on {api.host}")
    return created, False


def spec_difference(ours: Any, theirs: Any, path: str = "spec") -> str | None:
    """Where the cluster's spec differs from ours, or None when it holds everything we set.

    Katib's defaulting webhook adds fields (parallelTrialCount, resumePolicy, each
    parameter's distribution, the trial template's success condition) and appends a
    metric strategy per metric, so what we did not set is not a difference.
    """
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key, value in ours.items():
            if path == "spec.objective" and key == "metricStrategies":
                difference = _strategy_difference(value, theirs.get(key), f"{path}.{key}")
            else:
                difference = spec_difference(value, theirs.get(key), f"{path}.{key}")
            if difference:
                return difference
        return None
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return f"{path} has {len(theirs)} items there, {len(ours)} here"
        for i, (mine, other) in enumerate(zip(ours, theirs)):
            difference = spec_difference(mine, other, f"{path}[{i}]")
            if difference:
                return difference
        return None
    if ours is None or ours == theirs:
        return None
    return f"{path} is {_short(theirs)} there, {_short(ours)} here"


def _strategy_difference(ours: Any, theirs: Any, path: str) -> str | None:
    as_map = lambda items: {s.get("name"): s.get("value") for s in items or [] if isinstance(s, dict)}
    return spec_difference(as_map(ours), as_map(theirs), path)


# ---------------------------------------------------------------- waiting


def wait_for_experiment(api: ExperimentsApi, name: str, *, deadline: float, poll_s: float,
                        log: Log) -> dict | None:
    """The Experiment once Katib marks it Succeeded or Failed, or as last seen when the deadline passes.

    Watches first; when the watch fails it polls every ``poll_s`` seconds until the end.
    While polling, a server error or a lost connection is retried; a 401, 403 or 404 is not.
    """
    progress = ProgressLog(log)
    watching = True
    last_problem = ""
    while (remaining := deadline - time.monotonic()) > 0:
        if watching:
            try:
                with contextlib.closing(api.watch(name, min(remaining, WATCH_WINDOW_S))) as events:
                    for experiment in events:
                        if progress.update(experiment):
                            return experiment
                        if time.monotonic() >= deadline:
                            break
                continue  # the window ended: watch again
            except WatchUnavailable as err:
                if time.monotonic() >= deadline:
                    break
                log(f"katib: watch unavailable ({err}); polling every {poll_s:g} s")
                watching = False
        try:
            experiment = api.get(name)
        except ExperimentNotFound:
            raise ExperimentNotFound(f"experiment {api.namespace}/{name} disappeared while waiting for it "
                                     "(deleted by someone?)", 404) from None
        except LaunchError as err:
            if not _transient(err):
                raise
            if str(err) != last_problem:
                log(f"katib: {err}; retrying")
                last_problem = str(err)
        else:
            last_problem = ""
            if progress.update(experiment):
                return experiment
        time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))
    return progress.latest


def wait_until_gone(api: ExperimentsApi, name: str, *, deadline: float, poll_s: float) -> None:
    """Wait for a deleted Experiment to go (Katib's finalizer cleans its database rows first)."""
    while True:
        try:
            api.get(name)
        except ExperimentNotFound:
            return
        if time.monotonic() >= deadline:
            raise LaunchTimeout(f"experiment {api.namespace}/{name} was still being deleted at the deadline")
        time.sleep(max(0.0, min(poll_s, 2.0, deadline - time.monotonic())))


def delete_own(api: ExperimentsApi, name: str, uid: str | None, log: Log, why: str) -> bool:
    """Delete the Experiment with this uid (its trials and suggestion go with it), saying why. A failure
    is logged, not raised, so it never hides the result or the error that came before."""
    where = f"experiment {api.namespace}/{name}"
    log(f"katib: deleting {where} and its trials: {why}")
    try:
        api.delete(name, uid=uid)
    except ExperimentNotFound:
        return True
    except ApiFailure as err:
        if err.status == 409:  # the uid precondition failed: the name now belongs to another object
            log(f"katib: not deleting {where}: it is no longer the one this launch created")
        else:
            log(f"katib: warning: could not delete {where}: {err}")
        return False
    except LaunchError as err:
        log(f"katib: warning: could not delete {where}: {err}")
        return False
    log(f"katib: deleted {where}")
    return True


# ---------------------------------------------------------------- small helpers


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _duration_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"

