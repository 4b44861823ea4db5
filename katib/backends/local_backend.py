"""The local Katib backend as a :class:`~katib.backends.base.SweepBackend`: trials run on this machine."""

from __future__ import annotations

from pathlib import Path

from katib.backends.base import Log, Outcome, SweepBackend, TrialRow
from katib.backends.local import RunFolderLock, run_experiment


class LocalBackend(SweepBackend):
    """Runs an Experiment in ``run_dir`` with :func:`katib.backends.local.run_experiment` (resuming what is there).

    ``extra_env`` goes into every trial's environment; ``trial_metrics_file`` is where each trial
    leaves its per-epoch metrics (``${trialSpec.Name}`` is the trial's name), see run_experiment.
    """

    def __init__(self, run_dir: str | Path, *, extra_env: dict[str, str] | None = None,
                 trial_metrics_file: str | None = None):
        self.run_dir = Path(run_dir)
        self.extra_env = dict(extra_env or {})
        self.trial_metrics_file = trial_metrics_file

    def claim(self) -> RunFolderLock:
        # One sweep per folder: the Experiment's YAML and the summary beside the run are this run's too.
        return RunFolderLock(self.run_dir)

    def run(self, experiment: dict, *, log: Log = print) -> Outcome:
        result = run_experiment(experiment, self.run_dir, log=log, extra_env=self.extra_env,
                                trial_metrics_file=self.trial_metrics_file)
        return Outcome(
            experiment=result.name,
            condition=result.condition,
            reason=result.reason,
            message=result.message,
            best_trial=(result.optimal_trial or {}).get("bestTrialName") or None,
            trials=[TrialRow(r.name, r.state, r.reason, r.assignment_values, r.objective_value)
                    for r in result.trials],
            where=str(result.run_dir),
        )
