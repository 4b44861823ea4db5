"""Run a Katib Experiment on a cluster: create it, wait for it, hand on the best trial and every trial's row.

The cluster twin of the local backend (``katib.backends.local``): the same Experiment
dict goes in, and the same Katib shapes come out (condition, reason, trial
counts, ``status.currentOptimalTrial``), so the next step reads either alike.
:class:`ClusterBackend` is the :class:`~katib.backends.base.SweepBackend` a sweep stage uses.

- ``lifecycle``: create or reuse, wait (watch, else poll), keep or delete on stop (``launch_experiment``);
- ``status``: an Experiment's status read into a :class:`LaunchResult`;
- ``trials``: the Experiment's Trials as rows, failed ones with their state and reason;
- ``backend``: :class:`ClusterBackend`;
- ``cli``: ``study katib launch`` (``add_arguments``, ``run_from_args``).

Talking to the API server goes through :class:`ExperimentsApi` (katib/backends/cluster/api.py),
which turns each HTTP failure into one line a person can act on.

The ``kubernetes`` package is imported where it is first used: it takes about a
second to import, and ``study`` builds its parser from :func:`add_arguments`.
"""

from katib.backends.cluster.api import (  # re-exported: the launcher's errors and API are its interface
    CONNECT_TIMEOUT_S,
    GROUP,
    PLURAL,
    REQUEST_TIMEOUT_S,
    RESOURCE,
    VERSION,
    ApiFailure,
    ClusterUnreachable,
    ExperimentExists,
    ExperimentFailed,
    ExperimentNotFound,
    ExperimentsApi,
    Forbidden,
    KatibNotInstalled,
    LaunchCancelled,
    LaunchError,
    LaunchTimeout,
    NoCredentials,
    WatchUnavailable,
    api_failure,
    load_cluster_config,
)
from katib.backends.cluster.backend import ClusterBackend
from katib.backends.cluster.cli import add_arguments, parse_duration, run_from_args
from katib.backends.cluster.lifecycle import (
    DEFAULT_POLL_S,
    DEFAULT_TIMEOUT_S,
    ON_STOP_CHOICES,
    SERVER_METADATA,
    WATCH_WINDOW_S,
    create_or_reuse,
    creation_body,
    delete_own,
    launch_experiment,
    spec_difference,
    wait_for_experiment,
    wait_until_gone,
)
from katib.backends.cluster.status import (
    ALWAYS_SHOWN_COUNTS,
    FAILED,
    FINISHED_CONDITIONS,
    SUCCEEDED,
    SWEEP_LABEL,
    TRIAL_COUNT_FIELDS,
    LaunchResult,
    ProgressLog,
    experiment_result,
    finished_condition,
    latest_condition,
    metric_value,
    objective_value,
    parameter_assignments,
    progress_line,
    trial_counts,
)
from katib.backends.cluster.trials import (
    TRIAL_EXPERIMENT_LABEL,
    TRIAL_PLURAL,
    TRIAL_RESOURCE,
    experiment_trial_rows,
    list_trials,
    trial_row,
    trial_state,
)

__all__ = [
    "ALWAYS_SHOWN_COUNTS", "CONNECT_TIMEOUT_S", "DEFAULT_POLL_S", "DEFAULT_TIMEOUT_S", "FAILED", "FINISHED_CONDITIONS",
    "GROUP", "ON_STOP_CHOICES", "PLURAL", "REQUEST_TIMEOUT_S", "RESOURCE", "SERVER_METADATA", "SUCCEEDED",
    "SWEEP_LABEL", "TRIAL_COUNT_FIELDS", "TRIAL_EXPERIMENT_LABEL", "TRIAL_PLURAL", "TRIAL_RESOURCE", "VERSION",
    "WATCH_WINDOW_S", "ApiFailure", "ClusterBackend", "ClusterUnreachable", "ExperimentExists", "ExperimentFailed",
    "ExperimentNotFound", "ExperimentsApi", "Forbidden", "KatibNotInstalled", "LaunchCancelled", "LaunchError",
    "LaunchResult", "LaunchTimeout", "NoCredentials", "ProgressLog", "WatchUnavailable", "add_arguments",
    "api_failure", "create_or_reuse", "creation_body", "delete_own", "experiment_result", "experiment_trial_rows",
    "finished_condition", "latest_condition", "launch_experiment", "list_trials", "load_cluster_config",
    "metric_value", "objective_value", "parameter_assignments", "parse_duration", "progress_line", "run_from_args",
    "spec_difference", "trial_counts", "trial_row", "trial_state", "wait_for_experiment", "wait_until_gone",
]
