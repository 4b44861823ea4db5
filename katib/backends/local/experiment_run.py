"""``run_experiment``: the local backend's entry point, one run of an Experiment in a run folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from katib.backends.local.experiment_spec import read_experiment
from katib.backends.local.interrupts import resume_command
from katib.backends.local.locks import RunFolderLock
from katib.backends.local.results import ExperimentResult
from katib.backends.local.runner import LocalSweep, Log


def run_experiment(
    experiment: dict[str, Any],
    run_dir: str | Path,
    *,
    log: Log = print,
    extra_env: dict[str, str] | None = None,
    trial_metrics_file: str | None = None,
    resume_hint: str | None = None,
) -> ExperimentResult:
    """Run ``experiment`` in ``run_dir`` (resuming what is there) and return how it ended.

    ``log`` receives progress lines and every trial output line (prefixed with
    the trial name); ``extra_env`` is added to each trial's environment, over
    the container's ``env``. ``trial_metrics_file`` is where each trial leaves
    its own per-epoch metrics (a JSON ``history``; ``${trialSpec.Name}`` is the
    trial's name): a trial that succeeds is observed from it, so a resumed
    trial counts every epoch exactly once. ``resume_hint`` is the command an
    interrupted run tells the user to run (default: this process's command
    line). Bad input raises :class:`components.core.errors.UserError`; SIGINT and
    SIGTERM raise :class:`katib.backends.local.interrupts.SweepInterrupted`.
    """
    spec = read_experiment(experiment)
    sweep = LocalSweep(spec, Path(run_dir), log=_thread_safe(log), extra_env=extra_env or {},
                       trial_metrics_file=trial_metrics_file)
    with RunFolderLock(run_dir):
        return sweep.run(experiment, resume_hint or resume_command())


def _thread_safe(log: Log) -> Log:
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            log(line)

    return locked
