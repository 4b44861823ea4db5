"""The benchmark harness (bench/): its pure parts, and one tiny item run end to end.

Targets live in the benchmark's results, never here: these tests check that the
harness computes and reports correctly, not how fast this machine is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import flops, gpu_study, report, run, search, stats, timeline
from bench.machine import cpu_info, machine_slug, source_commit

REPO = Path(__file__).resolve().parents[2]
SEED_FORWARD_FLOPS = 70_552_576  # 2 × multiply-adds of conv1..4 and dense1..3, by hand


# ------------------------------------------------------------------------- FLOPs

def test_seed_cnn_flops_match_the_hand_count():
    by_layer = (2 * 28 * 28 * 32 * 25 * 1, 2 * 28 * 28 * 32 * 25 * 32, 2 * 14 * 14 * 64 * 9 * 32,
                2 * 14 * 14 * 64 * 9 * 64, 2 * 7 * 7 * 64 * 1024, 2 * 1024 * 512, 2 * 512 * 10)
    assert sum(by_layer) == SEED_FORWARD_FLOPS
    assert flops.seed_cnn_forward_flops() == SEED_FORWARD_FLOPS
    assert flops.training_flops(SEED_FORWARD_FLOPS) == 3 * SEED_FORWARD_FLOPS  # "about 3 × 70.6 MFLOP"


@pytest.mark.parametrize("filters", [(32, 32, 64, 64), (16, 64, 32, 16)])
def test_flops_read_from_the_built_model_equal_the_analytic_count(filters):
    from components.models import build_seed_cnn

    model = build_seed_cnn(filters=filters)
    assert flops.model_forward_flops(model) == flops.seed_cnn_forward_flops(filters)


def test_ceiling_is_the_gemm_rate_over_training_flops():
    # The numbers: ~190 GFLOP/s -> ~900 images/s, so ~700 images/s is ~78% of it.
    ceiling = flops.ceiling_images_per_second(190e9, SEED_FORWARD_FLOPS)
    assert ceiling == pytest.approx(190e9 / (3 * SEED_FORWARD_FLOPS))
    assert 0.75 < 700 / ceiling < 0.80


# ----------------------------------------------------------------- search curves

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
    from katib.local.experiment_spec import read_experiment

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
    from katib.local.samplers import create_sampler
    from katib.local.search_space import optuna_search_space, parameter_assignments

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


# -------------------------------------------------------------------------- stats

def test_paired_accuracy_difference():
    a = [True] * 90 + [False] * 10
    b = [True] * 88 + [False] * 2 + [True] * 3 + [False] * 7
    d = stats.paired_accuracy_difference(a, b)
    assert d["only_a"] == 2 and d["only_b"] == 3
    assert d["difference_pp"] == pytest.approx(1.0)
    assert d["standard_error_pp"] == pytest.approx(100 * ((5 - 1 / 100) ** 0.5) / 100)
    with pytest.raises(ValueError):
        stats.paired_accuracy_difference([True], [True, False])


# ----------------------------------------------------------------------- timeline

def _events():
    return [
        {"event": "start", "pid": 1, "t": 100.1, "exec_t": 100.0, "argv": ["-m", "train", "--output", "/o/t-0"],
         "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.data.load_dataset", "t0": 104.0, "t1": 104.1, "depth": 1,
         "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.data.Dataset.images", "t0": 104.1, "t1": 104.4, "depth": 1,
         "inherited": 0},
        {"event": "call", "pid": 1, "fn": "keras.Model.fit", "t0": 105.0, "t1": 135.0, "depth": 1, "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.train.run_trial", "t0": 104.0, "t1": 136.0, "depth": 0,
         "inherited": 0},
        {"event": "exit", "pid": 1, "t": 136.5},
        {"event": "start", "pid": 2, "t": 140.0, "argv": ["-m", "train"], "inherited": 1},
        {"event": "call", "pid": 2, "fn": "components.train.run_trial", "t0": 141.0, "t1": 150.0, "depth": 0,
         "inherited": 1},
        {"event": "start", "pid": 3, "t": 90.0, "argv": ["-m", "--executor_input", "{}"], "inherited": 0},
        {"event": "call", "pid": 3, "fn": "katib.sweep.run_sweep_stage", "t0": 92.0, "t1": 160.0, "depth": 0,
         "inherited": 0},
        {"event": "exit", "pid": 3, "t": 160.5},
        {"event": "start", "pid": 4, "t": 80.0, "argv": ["-m", "--executor_input", "{}"], "inherited": 1},
    ]


def test_timeline_breakdown_of_a_trial():
    procs = timeline.processes(_events())
    assert procs[1].arg("--output") == "/o/t-0" and procs[1].wall == pytest.approx(36.5)
    part = timeline.trial_breakdown(procs[1], train_seconds=27.0, end=137.0)
    assert part["wall_s"] == pytest.approx(37.0)
    assert part["start_and_imports_s"] == pytest.approx(4.0)
    assert part["data_load_s"] == pytest.approx(0.4)
    assert part["model_setup_s"] == pytest.approx(0.6)
    assert part["in_fit_not_training_s"] == pytest.approx(3.0)
    assert part["teardown_s"] == pytest.approx(2.0)
    assert part["overhead_s"] == pytest.approx(7.0)
    # Only process 3 is a pipeline step: 1 and 2 are trials, 4 was started from inside a recorded call.
    [step] = timeline.step_processes(procs)
    assert step.pid == 3 and step.top_level_work() == pytest.approx(68.0) and step.wall == pytest.approx(70.5)
    assert timeline.trial_breakdown(procs[2], 1.0) == {"complete": False}


def test_epoch_lines_and_warmup():
    text = "x\ntrial: epoch 1/3 trained in 9.5 s (10 images/s)\ntrial: epoch 2/3 trained in 4.0 s\n" \
           "trial: epoch 3/3 trained in 4.2 s (1 images/s)\n"
    epochs = timeline.epoch_seconds(text)
    assert epochs == [9.5, 4.0, 4.2]
    split = timeline.warmup_split(epochs)
    assert split["steady_epoch_s"] == 4.2 and split["warmup_s"] == pytest.approx(5.3)
    assert timeline.warmup_split([3.0])["warmup_s"] is None


def test_hook_records_calls_in_a_child_process(tmp_path):
    path = tmp_path / "timeline.jsonl"
    env = {**os.environ, **timeline.hook_environment(path)}
    code = ("import components.data as d\n"
            "try:\n    d.load_dataset('/nonexistent')\nexcept Exception:\n    pass\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)
    events = timeline.read_events(path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "exit"
    call = next(e for e in events if e["event"] == "call")
    assert call["fn"] == "components.data.load_dataset" and call["ok"] is False and call["depth"] == 0


# ------------------------------------------------------------------- report / run

def _results(quick=True):
    item = {"id": 4, "name": "input_pipeline", "title": "Input pipeline", "status": "ok",
            "settings": {"batch_size": 128}, "results": {"wait_share": 0.07},
            "headline": "7.0% of the step | not computing", "target": {"text": "≤ 5%", "met": False},
            "table": {"columns": ["per step", "seconds"], "rows": [["fit", "0.1800"], ["compute"]]},
            "notes": ["a note"], "files": {"curves_png": "x-search.png"}, "seconds": 12.0}
    machine = {"cpu": {"model": "AMD EPYC", "family": "25", "model_number": "17", "flags": ["avx512_bf16"]},
               "cores": 2, "memory_gib": 23.5, "gpus": [], "python": "3.11.7", "platform": "Linux",
               "libraries": {"keras": "3.12.4"}, "keras_backend_default": "tensorflow"}
    return {"schema": report.SCHEMA, "quick": quick, "started_at": "2026-11-25T10:00:00+00:00",
            "finished_at": "2026-11-25T10:01:00+00:00", "machine": machine, "sizes": {}, "items": [item]}


def test_markdown_rendering():
    text = report.render_markdown(_results())
    assert text.startswith("# Benchmark — 2026-11-25 on AMD EPYC")
    assert "not results" in text  # the quick-run banner
    assert "AMD EPYC (family 25, model 17), 2 cores" in text and "keras 3.12.4" in text
    assert "| 4 | Input pipeline | 7.0% of the step \\| not computing | ≤ 5% | **not met** |" in text
    assert "| compute |  |" in text  # short rows are padded
    assert "![curves_png](x-search.png)" in text
    assert "not results" not in report.render_markdown(_results(quick=False))


def test_md_table_escapes_pipes():
    assert report.md_table(["a"], [["x|y"]]).splitlines()[-1] == "| x\\|y |"


def test_run_writes_json_and_markdown_of_every_item(tmp_path, monkeypatch):
    def good(ctx):
        r = {"id": 1, "name": "good", "title": "Good", "status": "ok", "settings": {"n": ctx.sizes["gemm_n"]},
             "results": {}, "headline": "fine", "target": {"text": "t", "met": True},
             "table": {"columns": [], "rows": []}, "notes": [], "files": {}, "seconds": None}
        return r

    def bad(ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(run, "ITEMS", {1: good, 2: bad})
    monkeypatch.setattr(run, "machine_info", lambda: _results()["machine"])
    status = run.main(["--quick", "--set", "gemm_n=64", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")])
    assert status == 1  # an item failed; the other is still reported
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    assert files[0].name.endswith("-amd-epyc-2c-quick.json")
    results = json.loads(files[0].read_text())
    assert set(report.RESULT_KEYS) <= set(results)
    assert [i["status"] for i in results["items"]] == ["ok", "failed"]
    for item in results["items"]:
        assert set(report.ITEM_KEYS) <= set(item)
    assert results["items"][0]["settings"] == {"n": 64}
    assert "RuntimeError: boom" in results["items"][1]["error"]


def test_run_arguments():
    assert run.parse_only("3,1") == [1, 3]
    missing = max(run.ITEMS) + 1
    with pytest.raises(Exception, match=f"no item {missing}"):
        run.parse_only(str(missing))
    sizes = run.apply_sets({"epochs": 4, "pipeline_set": []}, ["epochs=2", "pipeline_set=[a=1]"])
    assert sizes == {"epochs": 2, "pipeline_set": ["a=1"]}
    with pytest.raises(Exception, match="NAME=VALUE"):
        run.apply_sets({"epochs": 4}, ["nope=1"])
    assert run.results_stem("2026-11-25", "amd-epyc-2c", False, sorted(run.ITEMS)) == "2026-11-25-amd-epyc-2c"
    assert run.results_stem("2026-11-25", "m", True, [1, 3]) == "2026-11-25-m-items-1-3-quick"


def test_machine_info_parsing():
    text = ("processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 17\n"
            "flags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n")
    cpu = cpu_info(text)
    assert cpu == {"model": "AMD EPYC", "family": "25", "model_number": "17",
                   "flags": ["avx2", "avx512f", "avx512_bf16"]}
    assert machine_slug({"cpu": cpu, "cores": 2, "gpus": []}) == "amd-epyc-2c"
    h100 = {"cpu": cpu, "cores": 16, "gpus": ["NVIDIA H100 80GB HBM3, 81559 MiB"]}
    assert machine_slug(h100) == "nvidia-h100-80gb-hbm3"


def test_results_name_the_source_commit(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("the tests run from a copy without .git: results would say 'commit unknown'")
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?", source_commit(REPO))
    assert source_commit(tmp_path) is None  # not a checkout


# ------------------------------------------------------------- GPU study helpers

def test_slice_sample_is_fixed_and_holds_the_studys_winner():
    sample = gpu_study.sample_indices(81, 12, include=(67,))
    assert sample == gpu_study.sample_indices(81, 12, include=(67,))
    assert 67 in sample and len(sample) == 12 and all(0 <= i < 81 for i in sample)
    assert gpu_study.sample_indices(8, 12) == list(range(8))


def test_makespan_and_projection():
    assert gpu_study.makespan([10, 10, 10, 10], 2) == 20
    assert gpu_study.makespan([30, 10, 10, 10], 2) == 30
    assert gpu_study.makespan([], 3) == 0
    # A sample of 2 trials of 10 s on 2 slots took 12 s: 81 trials project to 41 rounds × 10 s × 1.2.
    p = gpu_study.project_stage([10.0, 10.0], 81, 2, measured_wall=12.0)
    assert p["calibration"] == pytest.approx(1.2)
    assert p["projected_s"] == pytest.approx(41 * 10 * 1.2)


def test_winner_and_steady_rate():
    rows = [{"index": 3, "objective": 0.9}, {"index": 1, "objective": 0.9}, {"index": 2, "objective": None},
            {"index": 0, "objective": 0.8}]
    assert gpu_study.winner(rows)["index"] == 1  # ties go to the lower grid index
    assert gpu_study.winner([{"index": 0, "objective": None}]) is None
    assert gpu_study.steady_images_per_second([20.0, 2.0, 2.5, 2.0], 1000) == 500


def test_gpu_study_report_of_the_committed_h200_slice():
    """The report renders what a GPU machine wrote, and says how the GPU was shared."""
    results = json.loads((REPO / "bench/results/gpu/2026-11-25-h200-slice-mps.json").read_text())
    text = gpu_study.render_markdown(results)
    assert "NVIDIA H200" in text and "GPU shared (MPS not recorded)" in text  # written before the field existed
    assert "A: optimizers (best val_accuracy) | Adam (index 6) | 93.05%" in text
    assert "**999** (16.7 min; target ≤ 15 min: not met)" in text
    results["settings"]["mps"] = True
    assert "GPU shared through MPS" in gpu_study.render_markdown(results)
    results["settings"]["mps"] = False
    assert "GPU shared by time slices (no MPS)" in gpu_study.render_markdown(results)


def test_gpu_study_script_rejects_bad_input_with_one_line(tmp_path):
    script = str(REPO / "bench/gpu_study.sh")
    bad_backend = subprocess.run(["bash", script, "--backend", "mxnet", "--install-only"],
                                 capture_output=True, text=True)
    assert bad_backend.returncode == 2
    assert bad_backend.stderr.strip() == "error: --backend mxnet: expected jax or torch"
    # A Python with neither the backend nor Keras (a bare venv) and no wheels folder.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    env = {**os.environ, "PYTHON": str(tmp_path / "bare/bin/python"), "PYTHONPATH": ""}
    no_backend = subprocess.run(["bash", script, "--install-only"], capture_output=True, text=True, env=env)
    assert no_backend.returncode == 2
    assert no_backend.stderr.strip().startswith(f"error: {tmp_path}/bare/bin/python has no jax")


# ---------------------------------------------------------------- one real item

def test_quick_run_of_the_throughput_item(tmp_path, fmnist_dir):
    sets = ["gemm_n=128", "gemm_repeats=2", "train_images=128", "epochs=2", "variants=baseline",
            "data_train_size=300", "data_test_size=100"]
    cmd = [sys.executable, "-m", "bench.run", "--quick", "--only", "1", "--out", str(tmp_path / "out"),
           "--work", str(tmp_path / "work"), "--backend", "tensorflow"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [json_file] = (tmp_path / "out").glob("*.json")
    results = json.loads(json_file.read_text())
    [item] = results["items"]
    assert item["status"] == "ok" and item["id"] == 1
    res = item["results"]
    assert res["forward_flops_per_image"] == SEED_FORWARD_FLOPS
    assert res["gemm"]["flops_per_second"] > 0 and res["ceiling_images_per_second"] > 0
    baseline = res["variants"]["baseline"]
    assert baseline["images_per_second"] > 0 and baseline["train_images"] == 128
    assert baseline["forward_flops_per_image"] == SEED_FORWARD_FLOPS
    assert item["target"]["met"] in (True, False)
    assert json_file.with_suffix(".md").exists()


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
    for task, name in (("transfer-learning", "MobileNetV2"), ("transfer-learning-2", "InceptionV3")):
        write(f"{task}/run/metrics.json", {"constructor": name, "test_accuracy": transfer})
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
