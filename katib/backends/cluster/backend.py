"""The Katib controller as a :class:`~katib.backends.base.SweepBackend`: trials run as Jobs on the cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from katib.backends.base import Log, Outcome, SweepBackend
from katib.backends.cluster.lifecycle import DEFAULT_POLL_S, DEFAULT_TIMEOUT_S, launch_experiment

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class ClusterBackend(SweepBackend):
    """Creates the Experiment (or waits on the same one), waits for Katib to finish it, reads its Trials.

    The options are :func:`katib.backends.cluster.launch_experiment`'s. A Failed Experiment, a
    timeout or SIGTERM raise its errors (ExperimentFailed, LaunchTimeout, LaunchCancelled)
    after ``on_stop`` has kept or deleted it.
    """

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, poll_s: float = DEFAULT_POLL_S,
                 delete_after: bool = False, on_stop: str = "keep", api_client: ApiClient | None = None,
                 replace_existing: bool = False, namespace: str | None = None):
        self.options = {"timeout_s": timeout_s, "poll_s": poll_s, "delete_after": delete_after, "on_stop": on_stop,
                        "api_client": api_client, "replace_existing": replace_existing, "namespace": namespace}

    def run(self, experiment: dict, *, log: Log = print) -> Outcome:
        result = launch_experiment(experiment, log=log, list_trials=True, **self.options)
        return Outcome(
            experiment=result.name,
            condition=result.condition,
            reason=result.reason,
            message=result.message,
            best_trial=result.optimal_trial.get("bestTrialName") or None,
            trials=list(result.trial_rows or []),
            where=f"experiment {result.namespace}/{result.name}",
        )
