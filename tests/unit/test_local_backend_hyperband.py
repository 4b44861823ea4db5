"""katib.backends.local.hyperband: Katib's hyperband service, run through run_experiment with a stand-in trial.

Expected numbers are worked out by hand from Katib v0.19.0 pkg/suggestion/v1beta1/hyperband/service.py
(HyperBandParam.convert, GetSuggestions, _make_master_bracket, _make_child_bracket, _new_hbParameters)
and pkg/controller.v1beta1/experiment/experiment_controller.go (ReconcileTrials: the request is
parallelTrialCount - active trials, capped by maxTrialCount - completed).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from components.core.errors import UserError
from katib.backends.local import run_experiment

# The stand-in trial prints loss once per epoch, as Katib's examples print metrics: loss falls with the
# epochs and is least for lr near 0.03, so a promoted trial is always the rung's lowest loss.
TRIAL = (
    "import sys\n"
    "a = dict(x.split('=') for x in sys.argv[1:])\n"
    "lr, epochs = float(a['lr']), int(a['epochs'])\n"
    "for e in range(1, epochs + 1):\n"
    "    print(f'epoch {e}: loss={abs(lr - 0.03) + 1.0 / e:.6f}')\n"
)


def experiment(settings: dict[str, str], parallel: int, max_trials: int | None = None,
               epochs_type: str = "int") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "hyperband",
                      "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()]},
        "parallelTrialCount": parallel,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}},
            {"name": "epochs", "parameterType": epochs_type, "feasibleSpace": {"min": "1", "max": "1"}},
        ],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [{"name": "lr", "reference": "lr"}, {"name": "epochs", "reference": "epochs"}],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{
                "name": "training-container",
                "command": [sys.executable, "-c", TRIAL, "lr=${trialParameters.lr}",
                            "epochs=${trialParameters.epochs}"],
            }]}}}},
        },
    }
    if max_trials is not None:
        spec["maxTrialCount"] = max_trials
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "hb", "namespace": "kubeflow"}, "spec": spec}


def values(trial: Any) -> dict[str, str]:
    return {a["name"]: a["value"] for a in trial.assignments}


def test_brackets_rungs_and_budgets_are_katibs_for_eta_3_r_l_9(tmp_path: Path) -> None:
    # eta=3, r_l=9: s_max = int(log 9 / log 3) = 2, and parallelTrialCount must be >= 3**2 = 9.
    # The service sets n to the controller's request ("a hack to get current request number"), and the
    # request is parallelTrialCount minus the active trials (9 - active):
    #   bracket s=2 (nothing active, request 9): r = 9 * 3**-2 = 1 -> 9 trials at 1 epoch;
    #     rung 0->1 once all 9 succeeded (request 9): n_i = ceil(9 * 3**0) = 9, top ceil(9/3) = 3,
    #       at int(1 * 3**1) = 3 epochs;
    #     rung 1->2 once those 3 succeeded (request 9): n_i = ceil(9 * 3**-1) = 3, top 1 at int(1 * 3**2) = 9.
    #   That was the bracket's last rung, so the next request makes bracket s=1 at once, beside the one
    #   running trial (request 8): r = 9 * 3**-1 = 3 -> 8 trials at 3 epochs;
    #     rung 0->1 once those 8 succeeded (request 8 or 9, as the 9-epoch trial may still run):
    #       n_i = 8 or 9, top ceil(n_i / 3) = 3 at int(3 * 3**1) = 9 epochs.
    #   bracket s=0 beside those 3 (request 6, or 5 with the 9-epoch trial still running): r = 9, its only
    #   rung; then current_s = -1 and the next request gets the empty reply: the suggestion end.
    result = run_experiment(experiment({"resource_name": "epochs", "eta": "3", "r_l": "9"}, parallel=9),
                            tmp_path, log=lambda line: None)
    trials = result.trials
    epochs = [values(t)["epochs"] for t in trials]
    assert epochs[:28] == ["1"] * 9 + ["3"] * 3 + ["9"] + ["3"] * 8 + ["9"] * 3 + ["9"] * 4
    assert len(trials) in (29, 30) and set(epochs[28:]) == {"9"}
    assert all(t.state == "Succeeded" for t in trials)
    assert (result.condition, result.reason) == ("Succeeded", "ExperimentSuggestionEndReached")

    def promoted(rung: list[Any], top: int) -> list[str]:
        return [values(t)["lr"] for t in sorted(rung, key=lambda t: t.objective_value)[:top]]

    # The promoted trials are the rung's best (lowest loss), their lr carried over unchanged.
    assert sorted(values(t)["lr"] for t in trials[9:12]) == sorted(promoted(trials[0:9], 3))
    assert [values(t)["lr"] for t in trials[12:13]] == promoted(trials[9:12], 1)
    assert sorted(values(t)["lr"] for t in trials[21:24]) == sorted(promoted(trials[13:21], 3))
    # The first rung's other parameters are random within the feasible space.
    assert all(0.01 <= float(values(t)["lr"]) <= 0.05 for t in trials)
    # A trial run for r epochs is observed at its epoch-r loss (the min of 1/e is at e = r).
    last = trials[12]
    assert last.objective_value == pytest.approx(abs(float(values(last)["lr"]) - 0.03) + 1 / 9, abs=1e-6)


def test_a_double_resource_gets_katibs_integer_text_and_max_trial_count_caps_the_request(tmp_path: Path) -> None:
    # eta=2, r_l=2 (Katib's example): s_max = 1, needs 2 slots; maxTrialCount 3 with 2 slots:
    # bracket s=1: r = 2 * 2**-1 = 1 -> 2 trials ("1"); then the request is min(2, 3 - 2) = 1:
    # n = 1, n_i = ceil(1 * 2**0) = 1, top ceil(1/2) = 1 at int(1 * 2**1) = 2 -> "2".
    settings = {"resource_name": "epochs", "eta": "2", "r_l": "2"}
    result = run_experiment(experiment(settings, parallel=2, max_trials=3, epochs_type="double"), tmp_path,
                            log=lambda line: None)
    assert [values(t)["epochs"] for t in result.trials] == ["1", "1", "2"]
    best = min(result.trials[:2], key=lambda t: t.objective_value)
    assert values(result.trials[2])["lr"] == values(best)["lr"]
    assert result.reason == "ExperimentMaxTrialsReached"


@pytest.mark.parametrize(("settings", "parallel", "message"), [
    ({"resource_name": "epochs"}, 9, "needs the settings r_l and resource_name"),
    ({"resource_name": "epochs", "r_l": "9"}, 4, "needs spec.parallelTrialCount of at least 9"),
    ({"resource_name": "steps", "r_l": "9"}, 9, "resource_name='steps'"),
    ({"resource_name": "epochs", "r_l": "-1"}, 9, "r_l='-1'"),
    ({"resource_name": "epochs", "r_l": "9", "eta": "1"}, 9, "eta='1'"),
    ({"resource_name": "epochs", "r_l": "9", "s_max": "3"}, 9, "unknown setting 's_max'"),
])
def test_katibs_setting_checks_are_one_line_each(tmp_path: Path, settings: dict[str, str], parallel: int,
                                                 message: str) -> None:
    with pytest.raises(UserError, match=message) as raised:
        run_experiment(experiment(settings, parallel=parallel), tmp_path, log=lambda line: None)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "trials").exists()


def test_a_resumed_sweep_goes_on_with_the_services_saved_state(tmp_path: Path) -> None:
    # maxTrialCount 9 ends the sweep after bracket s=2's first rung. Raised to 13 (a LongRunning
    # Experiment may be restarted), the same folder goes on from the saved state, the requests now
    # capped by maxTrialCount - completed: request min(9, 13 - 9) = 4 -> n = 4, n_i = ceil(4 * 3**0) = 4,
    # top ceil(4/3) = 2 at 3 epochs; once they succeed, request min(9, 13 - 11) = 2 -> n_i = ceil(2 / 3) = 1,
    # top 1 at 9 epochs (the bracket's end); then request min(9, 13 - 12) = 1: bracket s=1's first rung,
    # 1 trial at 3 epochs, and maxTrialCount is reached.
    settings = {"resource_name": "epochs", "eta": "3", "r_l": "9"}
    first = experiment(settings, parallel=9, max_trials=9)
    first["spec"]["resumePolicy"] = "LongRunning"
    assert run_experiment(first, tmp_path, log=lambda line: None).reason == "ExperimentMaxTrialsReached"
    more = experiment(settings, parallel=9, max_trials=13)
    more["spec"]["resumePolicy"] = "LongRunning"
    trials = run_experiment(more, tmp_path, log=lambda line: None).trials
    assert [values(t)["epochs"] for t in trials] == ["1"] * 9 + ["3"] * 2 + ["9"] + ["3"]
    best2 = sorted(trials[:9], key=lambda t: t.objective_value)[:2]
    assert sorted(values(t)["lr"] for t in trials[9:11]) == sorted(values(t)["lr"] for t in best2)
    assert values(trials[11])["lr"] == values(min(trials[9:11], key=lambda t: t.objective_value))["lr"]


def test_a_rung_with_a_failed_trial_ends_the_sweep_failed_with_why(tmp_path: Path) -> None:
    # _get_top_trial raises while any trial of the last rung did not succeed; Katib retries forever.
    spec = experiment({"resource_name": "epochs", "eta": "3", "r_l": "9"}, parallel=9)
    command = spec["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"]
    # Exactly one trial fails: the one whose exclusive create of the flag file succeeds (O_EXCL: the
    # nine trials start at once, and an exists-then-touch check let two of them fail).
    flag = tmp_path / "failed-once"
    command[2] = ("import os, sys\ntry:\n"
                  f"    os.close(os.open({str(flag)!r}, os.O_CREAT | os.O_EXCL))\n    sys.exit(1)\n"
                  "except FileExistsError:\n    pass\n") + TRIAL
    result = run_experiment(spec, tmp_path, log=lambda line: None)
    assert result.condition == "Failed"
    assert re.search(r"hyperband cannot promote the rung of 9 trial\(s\): hb-\d{4} did not succeed", result.message)
    assert len(result.trials) == 9


def test_a_kill_between_a_suggested_trials_record_and_the_services_state_repeats_no_trial(tmp_path: Path) -> None:
    """The sweep SIGKILLs itself right after writing the third suggested trial's record, before the
    service's state says that suggestion was used (hooks.py: suggestion-recorded). The resumed sweep
    must not run the suggestion a second time: bracket s=2's first rung is exactly 9 one-epoch trials."""
    import signal

    from tests.fixtures.trials.local_sweeps import records, start_sweep

    run_dir = tmp_path / "run"
    spec = experiment({"resource_name": "epochs", "eta": "3", "r_l": "9"}, parallel=9)
    child = start_sweep(spec, run_dir, STUDY_TEST_KILL_AT="suggestion-recorded@3")
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert len(records(run_dir)) == 3
    result = run_experiment(spec, run_dir, log=lambda line: None)
    first_rung = [values(t)["lr"] for t in result.trials if values(t)["epochs"] == "1"]
    assert len(first_rung) == 9 and len(set(first_rung)) == 9, first_rung
    assert all(t.state == "Succeeded" for t in result.trials)
