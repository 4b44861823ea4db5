"""Item 9 (bench/items/smoke_run.py): the numbers and criteria it reads from a smoke run's artifacts."""

from __future__ import annotations

import json


def _smoke_layout(tmp_path, ranking, spread=0.01, transfer=0.7, train=0.88, test=0.86):
    run = tmp_path / "smoke" / "study-pipeline-2026"

    def write(rel, data):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(json.dumps(data))

    write("train-cnn/model/metrics.json", {"final": {"accuracy": train}})
    write("evaluate-model/evaluation/metrics.json", {"test_accuracy": test})
    write("run-sweep/sweep/summary.json", {"trials": [
        {"combination": [name], "val_accuracy": 0.9 - 0.05 * i} for i, name in enumerate(ranking)]})
    for task in ("run-sweep-2", "run-sweep-3"):
        write(f"{task}/sweep/summary.json", {"trials": [{"combination": ["x"], "val_accuracy": 0.8 + spread * i}
                                                        for i in range(5)]})
    # kfp.local's layout for a loop's iterations (kfp/local/orchestrator/enhanced_dag_orchestrator.py, 2.17).
    for i, name in enumerate(("MobileNetV2", "InceptionV3")):
        write(f"for-loop-2-iteration-{i}/transfer-learning/run/metrics.json", {"constructor": name,
                                                                             "test_accuracy": transfer})
    return tmp_path / "smoke"


def test_smoke_run_criteria_read_from_the_runs_artifacts(tmp_path):
    from bench.items.smoke_run import criteria, smoke_results

    good = ["Nadam", "Adam", "RMSprop", "Adamax", "SGD", "Adagrad", "Adadelta", "Ftrl"]
    results = smoke_results(_smoke_layout(tmp_path / "a", good))
    assert results["sweep_a_ranking"] == good and results["cnn_test_accuracy"] == 0.86
    assert results["sweeps_bc"]["filters"] == {"trials": 5, "spread_pp": 4.0}
    assert all(criteria(results, wall_s=470, gemm_gflops=200).values())
    # A slower machine may take proportionally longer; a run over the scaled budget is not met.
    assert criteria(results, wall_s=900, gemm_gflops=104)["wall_within_8_min_at_200_gflops"]
    assert not criteria(results, wall_s=600, gemm_gflops=200)["wall_within_8_min_at_200_gflops"]
    bad = smoke_results(_smoke_layout(tmp_path / "b", [*good[:5], "Ftrl", "Adagrad", "Adadelta"], spread=0.0,
                                      transfer=0.3, train=0.95, test=0.80))
    checks = criteria(bad, wall_s=100, gemm_gflops=200)
    assert {k for k, v in checks.items() if not v} == {"cnn_test_at_least_85", "cnn_within_5pp_of_train",
                                                        "sweep_a_ftrl_adadelta_lowest", "sweeps_bc_show_a_spread",
                                                        "transfer_above_chance"}


def test_step_times_are_read_from_the_consoles_own_events():
    """The plain events the console prints (pipelines/console.Progress) are what item 9 parses."""
    from bench.items.smoke_run import step_seconds
    from pipelines.console import Progress
    from tests.unit.test_console import Clock, kfp_task

    clock = Clock()
    progress = Progress(["train-cnn", "run-sweep"], {}, {}, clock=clock)
    events = []
    for line, advance in [(kfp_task("train-cnn"), 0), ("trial: epoch 1/5", 79), (kfp_task("train-cnn", "SUCCESS"), 0),
                          (kfp_task("run-sweep"), 0), ("x", 111), (kfp_task("run-sweep", "FAILED"), 0)]:
        clock.now += advance
        events += progress.feed(line)
    assert step_seconds("\n".join(["other text", *events])) == {"train-cnn": 79}  # a failed step has no time
