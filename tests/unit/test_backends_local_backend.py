"""katib.backends.local_backend.LocalBackend: the local Katib backend's result as an Outcome of TrialRows.

Trials run tests/fixtures/trials/fake_trial.py (see tests/unit/test_local_backend.py); --crash-if-x
makes one trial's process exit with an error, as a trial whose `study train` fails.
"""

from __future__ import annotations

from katib.backends.base import Outcome, TrialRow
from katib.backends.local import RunFolderLock
from katib.backends.local_backend import LocalBackend
from tests.unit.test_local_backend import X_PARAMETER, make_experiment, quiet


def test_the_outcome_holds_every_trial_the_failed_one_with_its_state(tmp_path):
    experiment = make_experiment([X_PARAMETER], trial_args=["--crash-if-x", "0.3"])
    outcome = LocalBackend(tmp_path).run(experiment, log=quiet)

    assert isinstance(outcome, Outcome)
    assert (outcome.experiment, outcome.condition, outcome.where) == ("sweep", "Succeeded", str(tmp_path))
    by_x = {t.assignments["x"]: t for t in outcome.trials}
    assert by_x["0.3"] == TrialRow(by_x["0.3"].name, "Failed", "TrialFailed", {"x": "0.3"}, None)
    assert by_x["0.1"].state == by_x["0.5"].state == "Succeeded"
    assert by_x["0.1"].objective == by_x["0.5"].objective == 0.76  # fake_trial: 0.8 - (x - 0.3)^2
    assert outcome.best_trial in (by_x["0.1"].name, by_x["0.5"].name)


def test_without_a_reporting_trial_there_is_no_best_trial(tmp_path):
    experiment = make_experiment([X_PARAMETER], trial_args=["--crash"], maxFailedTrialCount=1)
    outcome = LocalBackend(tmp_path).run(experiment, log=quiet)
    assert (outcome.condition, outcome.reason, outcome.best_trial) == ("Failed", "ExperimentFailed", None)
    assert [(t.state, t.objective) for t in outcome.trials] == [("Failed", None)] * len(outcome.trials)


def test_the_claim_is_the_run_folders_lock(tmp_path):
    claim = LocalBackend(tmp_path / "run").claim()
    assert isinstance(claim, RunFolderLock) and claim.run_dir == tmp_path / "run"
