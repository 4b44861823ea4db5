"""Item 5's replay (bench/search.py): the grid, medianstop and sampler strategies scored on recorded
per-epoch values, and the curves' figure."""

from __future__ import annotations

import pytest

from bench import search


def test_best_so_far_and_epochs_to_reach():
    events = [search.Event(3, 0.80), search.Event(3, None), search.Event(1, 0.85), search.Event(3, 0.84)]
    curve = search.best_so_far(events)
    assert curve == [(3, 0.80), (6, 0.80), (7, 0.85), (10, 0.85)]
    assert search.epochs_to_reach(curve, 0.85) == 7
    assert search.epochs_to_reach(curve, 0.80) == 3
    assert search.epochs_to_reach(curve, 0.90) is None


HISTORIES = {
    ("a",): [0.80, 0.82, 0.83],
    ("b",): [0.70, 0.71, 0.72],
    ("c",): [0.81, 0.83, 0.84],
    ("d",): [0.60, 0.62, 0.90],  # a late bloomer: median stop would cut it
    ("e",): [0.82, 0.85, 0.86],
}
ORDER = [("a",), ("b",), ("c",), ("d",), ("e",)]


def test_grid_events_cost_every_epoch_and_find_each_trials_best():
    events = search.grid_events(ORDER, HISTORIES)
    assert [e.epochs for e in events] == [3] * 5
    assert [e.value for e in events] == [0.83, 0.72, 0.84, 0.90, 0.86]


def test_medianstop_replay_uses_katibs_rule_from_the_trials_before():
    events = search.medianstop_events(ORDER, HISTORIES, min_trials_required=3, start_step=1)
    # No rule for the first three trials; then V = mean of their first-epoch values = (0.80+0.70+0.81)/3.
    assert [e.epochs for e in events[:3]] == [3, 3, 3]
    assert events[3] == search.Event(1, 0.60)  # 0.60 < 0.77 at step 1: stopped, one epoch spent
    assert events[4].epochs == 3  # 0.82 >= 0.77
    curve = search.best_so_far(events)
    assert curve[-1] == (13, 0.86)  # the late bloomer's 0.90 is never seen


def _toy_experiment_parameters():
    from katib.backends.local.experiment_spec import read_experiment

    experiment = {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "toy", "namespace": "x"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
            "algorithm": {"algorithmName": "random"}, "maxTrialCount": 5,
            "parameters": [{"name": "p", "parameterType": "categorical",
                            "feasibleSpace": {"list": ["a", "b", "c", "d", "e"]}}],
            "trialTemplate": {"primaryContainerName": "training", "trialParameters": [
                {"name": "p", "reference": "p"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "training", "image": "x", "command": ["echo", "${trialParameters.p}"]}],
                    "restartPolicy": "Never"}}}}},
        },
    }
    return read_experiment(experiment).parameters


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_sampler_replay_answers_from_the_table_within_the_budget(algorithm):
    from katib.backends.local.samplers import create_sampler
    from katib.backends.local.search_space import optuna_search_space, parameter_assignments

    parameters = _toy_experiment_parameters()
    key_of = lambda params: tuple(a["value"] for a in parameter_assignments(parameters, params))  # noqa: E731
    runs = [search.sampler_events(lambda seed=seed: create_sampler(algorithm, {"random_state": str(seed)}, parameters),
                                  optuna_search_space(parameters), key_of, HISTORIES, budget_trials=5)
            for seed in range(3)]
    for events in runs:
        assert len(events) == 5 and all(e.epochs == 3 for e in events)
        assert {e.value for e in events} <= {max(h) for h in HISTORIES.values()}
    summary = search.summarize_strategy(algorithm, runs, threshold=0.899, grid_epochs=15)
    assert summary["runs"] == 3
    assert summary["budget_epochs_median"] == 15
    reached = [r for r in summary["epochs_to_reach_each"] if r is not None]
    assert len(reached) == summary["reached"]
    if summary["epochs_to_reach_median"] is not None:
        assert summary["share_of_grid"] == pytest.approx(summary["epochs_to_reach_median"] / 15)


def test_summary_share_and_never_reached():
    fast = [search.Event(3, 0.9)]
    never = [search.Event(3, 0.5), search.Event(3, 0.6)]
    s = search.summarize_strategy("x", [fast, never, fast], threshold=0.9, grid_epochs=30)
    assert s["epochs_to_reach_median"] == 3 and s["share_of_grid"] == pytest.approx(0.1)
    assert s["reached"] == 2
    s = search.summarize_strategy("y", [never, never, fast], threshold=0.9, grid_epochs=30)
    assert s["epochs_to_reach_median"] is None and s["share_of_grid"] is None


def test_median_curve_is_pointwise():
    a = [(3, 0.5), (6, 0.7)]
    b = [(3, 0.6), (6, 0.6), (9, 0.8)]
    curve = search.median_curve([a, b])
    assert [x for x, _ in curve] == [3, 6, 9]
    assert [y for _, y in curve] == pytest.approx([0.55, 0.65, 0.75])


def test_curves_png_is_written(tmp_path):
    path = tmp_path / "curves.tmp"  # a temporary name: the format must not come from the suffix
    search.plot_curves({"grid": [(3, 0.8), (6, 0.85)], "tpe": [(3, 0.84)]}, 0.848, 0.85, path, "toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



def test_hyperband_replay_plays_katibs_brackets_on_the_recorded_steps():
    # r_l = 3 epochs (no final line: final_steps=0), eta = 3: s_max = 1. Bracket s=1: 3 trials (the 3 free slots) at
    # int(3 * 3**-1) = 1 step, then the best ceil(3 / 3) = 1 at int(1 * 3**1) = 3 steps; bracket s=0
    # beside it gets the 2 slots left, at 3 steps; then the service's empty reply ends the replay.
    parameters = search.parameters_from_histories(HISTORIES)
    events = search.hyperband_events(parameters, HISTORIES, eta=3, parallel=3, seed=0, final_steps=0)
    assert [e.epochs for e in events] == [1, 1, 1, 3, 3, 3]
    first_rung = [e.value for e in events[:3]]
    # Each is seen at the best of its first r steps; the promoted trial was the first rung's best.
    assert all(v in {h[0] for h in HISTORIES.values()} for v in first_rung)
    promoted = next(h for h in HISTORIES.values() if h[0] == max(first_rung))
    assert max(promoted) in [e.value for e in events[3:]]


def test_hyperband_replay_counts_a_trials_final_line_as_the_grid_does():
    # 3 epochs + 1 final line per recorded trial: r_l = 3, so the same brackets, each trial costing r + 1.
    histories = {k: [*h, max(h)] for k, h in HISTORIES.items()}
    parameters = search.parameters_from_histories(histories)
    events = search.hyperband_events(parameters, histories, eta=3, parallel=3, seed=0)
    assert [e.epochs for e in events] == [2, 2, 2, 4, 4, 4]


def test_item_5s_hyperband_replay_takes_r_l_from_the_epochs_whether_or_not_trials_print_a_final_line():
    # Today's trials record their 3 epochs and no final line: r_l = 3, so the brackets of the test above
    # (1 + 1 + 1 + 3 + 3 + 3 = 12 epochs). Taking one line off as a final line would make r_l = 2: one
    # bracket of 3 trials at 2 epochs, each costing 3 (9).
    from bench.items.search_efficiency import replay_strategies

    sizes = {"search_epochs": 3, "medianstop_start_steps": "", "search_samplers": "", "search_seeds": 1,
             "search_hyperband": "3:3", "medianstop_min_trials": 3}
    parameters = tuple(search.parameters_from_histories(HISTORIES))
    for histories in (HISTORIES, {k: [*h, max(h)] for k, h in HISTORIES.items()}):  # without and with the line
        strategies, _ = replay_strategies(list(histories), histories, parameters, sizes, 0.9, 27)
        (hyperband,) = [x for x in strategies if x["strategy"].startswith("hyperband")]
        assert hyperband["budget_epochs_median"] == (12 if histories is HISTORIES else 12 + 6)
