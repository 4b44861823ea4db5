"""Item 10 (bench/items/search_pbt.py): the Experiment it runs and how it scores a run."""

from __future__ import annotations

import json
from types import SimpleNamespace

from bench.items.search_pbt import CHECKPOINTS, pbt_experiment, score
from bench.probe import REPO

RECORDED = "bench/results/2026-11-25-amd-epyc-2c.json"


def test_the_experiment_is_item_5s_grid_with_katibs_pbt_and_the_trials_warm_start():
    from katib.backends.local.experiment_spec import read_experiment
    from katib.validate import validate_experiment

    run = json.loads((REPO / RECORDED).read_text())
    recorded = next(i for i in run["items"] if i["name"] == "search_efficiency")
    experiment = pbt_experiment(recorded, run["sizes"], "/data", "/out", population=8, max_trials=40, parallel=2,
                                epochs=1)
    assert validate_experiment(experiment) == []  # what Katib's webhook would say
    spec = read_experiment(experiment)
    assert (spec.algorithm_name, spec.max_trial_count, spec.parallel_trial_count) == ("pbt", 40, 2)
    assert [p["name"] for p in spec.parameters] == ["activation1", "activation2", "activation3", "activation4"]
    assert all(p["feasibleSpace"]["list"] == ["elu", "relu", "selu"] for p in spec.parameters)  # the recorded grid's
    (container,) = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[-2:] == ["--warm-start", CHECKPOINTS]
    assert command[command.index("--optimizer") + 1] == "Nadam" and command[command.index("--epochs") + 1] == "1"
    settings = {s["name"]: s["value"] for s in experiment["spec"]["algorithm"]["algorithmSettings"]}
    assert settings == {"suggestion_trial_dir": CHECKPOINTS, "n_population": "8", "truncation_threshold": "0.4"}


def test_a_run_is_scored_by_the_epochs_trained_in_the_order_trials_finished():
    trial = lambda history, at: SimpleNamespace(objective_history=history, finished_at=at)  # noqa: E731
    trials = [trial([0.86], "2026-12-02T07:00:03"), trial([0.80], "2026-12-02T07:00:01"),
              trial([], "2026-12-02T07:00:02"), trial([0.84], "2026-12-02T07:00:02"),
              trial([0.87], "2026-12-02T07:00:04")]
    assert score(trials, threshold=0.855, epochs_per_trial=2) == {
        "epochs_to_reach": 6, "epochs_spent": 8, "trials": 4, "best": 0.87}
    assert score(trials[1:2], threshold=0.855, epochs_per_trial=1)["epochs_to_reach"] is None
