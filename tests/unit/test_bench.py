"""The benchmark harness (bench/): its shared pure parts (FLOPs, stats, timeline, report, run, machine,
the GPU study's helpers). Item-specific tests are in test_bench_<item>.py (test_bench_search.py for
item 5's replay).

Targets live in the benchmark's results, never here: these tests check that the
harness computes and reports correctly, not how fast this machine is.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench import flops, gpu_compare, gpu_peaks, gpu_study, gpu_study_report, report, run, stats, timeline
from bench.machine import cpu_info, machine_slug, source_commit
from bench.probe import run_probe

REPO = Path(__file__).resolve().parents[2]
SEED_FORWARD_FLOPS = 70_552_576  # 2 × multiply-adds of conv1..4 and dense1..3, by hand


# ------------------------------------------------------------------------- FLOPs

def test_seed_cnn_flops_match_the_hand_count():
    by_layer = (2 * 28 * 28 * 32 * 25 * 1, 2 * 28 * 28 * 32 * 25 * 32, 2 * 14 * 14 * 64 * 9 * 32,
                2 * 14 * 14 * 64 * 9 * 64, 2 * 7 * 7 * 64 * 1024, 2 * 1024 * 512, 2 * 512 * 10)
    assert sum(by_layer) == SEED_FORWARD_FLOPS
    assert flops.study_cnn_forward_flops() == SEED_FORWARD_FLOPS
    assert flops.training_flops(SEED_FORWARD_FLOPS) == 3 * SEED_FORWARD_FLOPS  # "about 3 × 70.6 MFLOP"


@pytest.mark.parametrize("filters", [(32, 32, 64, 64), (16, 64, 32, 16)])
def test_flops_read_from_the_built_model_equal_the_analytic_count(filters):
    from components.cnn.models import build_study_cnn

    model = build_study_cnn(filters=filters)
    assert flops.model_forward_flops(model) == flops.study_cnn_forward_flops(filters)


def test_padding_sweep_cs_shapes_to_one_program_costs_what_the_docs_say():
    """components/cnn/packed/members.py and the README give the FLOPs padding wastes (#17's sweep C lever)."""
    from components.sweeps import SWEEPS

    sweep = SWEEPS["filters"]
    shapes = [tuple(int(f) for f in sweep.settings(dict(zip((p.name for p in sweep.parameters),
                                                             sweep.combination_at(i))))["filters"].split(","))
              for i in range(sweep.grid_size)]
    own = sum(flops.study_cnn_forward_flops(s) for s in shapes)
    largest = tuple(max(s[k] for s in shapes) for k in range(4))
    padded = len(shapes) * flops.study_cnn_forward_flops(largest)
    assert len(shapes) == 81 and largest == (64, 64, 64, 64)
    assert round(padded / own, 2) == 2.82 and round(1 - own / padded, 2) == 0.65
    assert (round(own / 1e9, 2), round(padded / 1e9, 1)) == (5.73, 16.2)
    smallest = min(flops.study_cnn_forward_flops(s) for s in shapes)
    assert round(1 - smallest / flops.study_cnn_forward_flops(largest), 2) == 0.92
    docs = (REPO / "components/cnn/packed/members.py").read_text() + (REPO / "README.md").read_text()
    for figure in ("2.82 times", "16.2 against 5.73 GFLOP", "65% of", "92% for the smallest", "1.22 times"):
        assert figure in " ".join(docs.split())
    # What --pad-filters 3,4 costs: bench.flops.padding_waste over the sweep's own trials.
    from components.cnn.hparams import TrialConfig

    assert round(flops.padding_waste([TrialConfig(filters=s) for s in shapes], (3, 4)), 2) == 1.22


def test_ceiling_is_the_gemm_rate_over_training_flops():
    # The numbers: ~190 GFLOP/s -> ~900 images/s, so ~700 images/s is ~78% of it.
    ceiling = flops.ceiling_images_per_second(190e9, SEED_FORWARD_FLOPS)
    assert ceiling == pytest.approx(190e9 / (3 * SEED_FORWARD_FLOPS))
    assert 0.75 < 700 / ceiling < 0.80


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


def test_paired_mean_difference():
    d = stats.paired_mean_difference([0.90, 0.80, 0.70], [0.91, 0.79, 0.73])  # differences +0.01, -0.01, +0.03
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.01)
    assert d["sd"] == pytest.approx(0.02) and d["standard_error"] == pytest.approx(0.02 / 3**0.5)
    assert stats.paired_mean_difference([0.5], [0.6])["standard_error"] is None
    with pytest.raises(ValueError):
        stats.paired_mean_difference([], [])


# ----------------------------------------------------------------------- timeline

def _events():
    return [
        {"event": "start", "pid": 1, "t": 100.1, "exec_t": 100.0, "argv": ["-m", "train", "--output", "/o/t-0"],
         "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.core.dataset.load_dataset", "t0": 104.0, "t1": 104.1, "depth": 1,
         "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.core.dataset.Dataset.images", "t0": 104.1, "t1": 104.4,
         "depth": 1, "inherited": 0},
        {"event": "call", "pid": 1, "fn": "keras.Model.fit", "t0": 105.0, "t1": 135.0, "depth": 1, "inherited": 0},
        {"event": "call", "pid": 1, "fn": "components.cnn.train.run_trial", "t0": 104.0, "t1": 136.0, "depth": 0,
         "inherited": 0},
        {"event": "exit", "pid": 1, "t": 136.5},
        {"event": "start", "pid": 2, "t": 140.0, "argv": ["-m", "train"], "inherited": 1},
        {"event": "call", "pid": 2, "fn": "components.cnn.train.run_trial", "t0": 141.0, "t1": 150.0, "depth": 0,
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
    code = ("import components.core.dataset as d\n"
            "try:\n    d.load_dataset('/nonexistent')\nexcept Exception:\n    pass\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)
    events = timeline.read_events(path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "exit"
    call = next(e for e in events if e["event"] == "call")
    assert call["fn"] == "components.core.dataset.load_dataset" and call["ok"] is False and call["depth"] == 0


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
    assert "matmul precision JAX default" in text  # run before --matmul-precision existed
    results["settings"]["matmul_precision"] = "tensorfloat32"
    assert "matmul precision tensorfloat32" in gpu_study.render_markdown(results)


def test_gpu_study_report_of_the_committed_tiny_packed_cpu_run():
    """A --packed run says so, with its throughput; a pack's rows are no trials to project from."""
    results = json.loads((REPO / "bench/results/gpu/2026-12-01-amd-epyc-2c-tiny-cpu-packed.json").read_text())
    assert results["settings"]["mode"] == "tiny-cpu" and results["settings"]["packed"] is True
    assert "projection" not in results and results["machine"]["commit"]
    text = gpu_study.render_markdown(results)
    assert "- mode: **tiny-cpu**" in text and "**packed trials**" in text
    assert [r["pack_size"] for r in results["trials"] if r["stage"] == "activations"] == [3, 3, 3]
    # That run was stopped in stage C, before its throughput was written; a finished run's reads:
    lines = gpu_study_report.throughput_lines({"images": 54_000, "wall_s": 2.0, "images_per_second": 27_000.0,
                                              "pflop": 0.0343, "tflops": 17.1})
    assert lines[0] == ("- throughput: 54,000 training images in 2 s wall = 27,000 images/s, **17.1 TFLOP/s** "
                        "achieved (0.0343 PFLOP of training)")


@pytest.mark.parametrize("name, label, tf32_dense", [
    ("NVIDIA H200, 143771 MiB", "H200 SXM", 494.5),  # as the committed H200 run's machine record names it
    ("NVIDIA H200 NVL, 143771 MiB", "H200 NVL", 417.5),
    ("NVIDIA H100 80GB HBM3, 81559 MiB", "H100 SXM", 494.5),
    ("NVIDIA H100 PCIe, 81559 MiB", "H100 PCIe", 378.0),
    ("NVIDIA H100 NVL, 95830 MiB", "H100 NVL", 417.5),
    ("NVIDIA A100-SXM4-80GB, 81920 MiB", "A100", 156.0),
])
def test_datasheet_peaks_are_dense_halves_of_the_sparse_figures(name, label, tf32_dense):
    peaks = gpu_peaks.datasheet_peaks(name)
    assert peaks["label"] == label and peaks["tensorfloat32"] == tf32_dense
    assert peaks["bfloat16"] == pytest.approx(2 * tf32_dense, rel=0.002)  # bf16 tensor cores: twice TF32's rate
    assert peaks["float32"] < peaks["tensorfloat32"]


def test_a_run_knows_the_precision_it_computed_in():
    assert gpu_peaks.datasheet_peaks("Tesla T4, 15360 MiB") is None
    assert gpu_peaks.run_precision({"dtype_policy": "float32", "matmul_precision": None}) == "tensorfloat32"
    assert gpu_peaks.run_precision({"dtype_policy": "float32", "matmul_precision": "highest"}) == "float32"
    assert gpu_peaks.run_precision({"dtype_policy": "mixed_bfloat16", "matmul_precision": "highest"}) == "bfloat16"
    assert gpu_peaks.run_precision({"dtype_policy": "float32", "matmul_precision": None}, on_gpu=False) == "float32"


def test_gpu_study_report_puts_the_achieved_rate_against_the_chip():
    """#17: achieved TFLOP/s against the chip's peak for fp32/TF32 and bf16, and against the measured GEMM."""
    results = json.loads((REPO / "bench/results/gpu/2026-11-25-h200-slice-mps.json").read_text())
    assert "Against the chip" not in gpu_study.render_markdown(results)  # no throughput recorded then
    results["throughput"] = {"images": 1, "wall_s": 1.0, "images_per_second": 1.0, "pflop": 0.1, "tflops": 98.9}
    results["gemm"] = {"n": 8192, "device": "cuda:0", "backend": "gpu",
                       "rates": {"float32": {"tflops": 49.45}, "tensorfloat32": {"tflops": 197.8},
                                 "bfloat16": {"error": "XlaRuntimeError: out of memory"}}}
    text = gpu_study.render_markdown(results)
    assert "Against the chip (H200 SXM: NVIDIA's datasheet peak without sparsity; GEMM measured here, n = 8192" in text
    assert "| fp32 | 67.0 | 49.5 | 147.6% | 200.0% |" in text
    assert "| TF32 (this run) | 494.5 | 197.8 | 20.0% | 50.0% |" in text
    assert "| bf16 | 989.5 | XlaRuntimeError: out of memory | 10.0% | – |" in text
    results["settings"]["dtype_policy"] = "mixed_bfloat16"
    assert "| bf16 (this run) |" in gpu_study.render_markdown(results)
    results["settings"]["dtype_policy"] = "float32"
    results["machine"]["gpus"], results["gemm"] = [], {"error": "probe gemm_rates exited 1"}
    text = gpu_study.render_markdown(results)
    assert "(no GPU: no datasheet peak known; GEMM not measured: probe gemm_rates exited 1):" in text
    assert "| fp32 (this run) | – | not measured | – | – |" in text  # a CPU has no TF32


def test_gemm_rates_probe_measures_each_precision_the_device_has():
    """The measured ceilings, for real on this machine's JAX: a precision the CPU refuses (TF32) says why."""
    pytest.importorskip("jax")
    result = run_probe({"kind": "gemm_rates", "n": 256, "repeats": 3}, timeout=300)
    assert result["kind"] == "gemm_rates" and result["n"] == 256 and result["backend"] == "cpu"
    for precision in ("float32", "bfloat16"):
        rate = result["rates"][precision]
        assert len(rate["seconds"]) == 3 and rate["tflops"] == pytest.approx(2 * 256**3 / rate["seconds"][1] / 1e12)
    assert "not supported" in result["rates"]["tensorfloat32"]["error"]


def _trial(stage: str, index: int, objective, optimizer: str = "Adam", activations=("relu",) * 4,
           filters=(32, 32, 64, 64)) -> dict:
    return {"name": f"{stage}-{index:02d}", "stage": stage, "index": index, "objective": objective,
            "config": {"optimizer": optimizer, "learning_rate": None, "activations": list(activations),
                       "filters": list(filters), "epochs": 10, "batch_size": 128, "seed": 1}}


def test_gpu_compare_pairs_trials_by_their_whole_configuration(tmp_path, capsys):
    base = {"settings": {"dtype_policy": "float32", "matmul_precision": "highest"}, "wall_s": 200.0,
            "throughput": {"tflops": 50.0},
            "trials": [_trial("optimizer", 0, 0.90, "Adam"), _trial("optimizer", 1, 0.92, "Nadam"),
                       _trial("activations", 3, 0.91, "Nadam", ("selu",) * 4),
                       _trial("activations", 4, 0.93, "Nadam", ("elu",) * 4),
                       _trial("filters", 5, None, "Nadam")]}  # failed: no objective, not paired
    other = {"settings": {"dtype_policy": "float32", "matmul_precision": "tensorfloat32"}, "wall_s": 100.0,
             "throughput": {"tflops": 100.0},
             "trials": [_trial("optimizer", 0, 0.91, "Adam"), _trial("optimizer", 1, 0.92, "Nadam"),
                        # the same name trained another model (B started from another A winner): not paired
                        _trial("activations", 3, 0.95, "Adam", ("selu",) * 4),
                        _trial("activations", 4, 0.94, "Nadam", ("elu",) * 4),
                        _trial("filters", 5, 0.90, "Nadam")]}
    for name, run_ in (("base", base), ("other", other)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.json").write_text(json.dumps(run_))
    c = gpu_compare.compare(gpu_compare.load_run(tmp_path / "base"), gpu_compare.load_run(tmp_path / "other"))
    assert c["settings"] == {"matmul_precision": ("highest", "tensorfloat32")}
    assert c["stages"]["optimizer"]["paired"] == 2 and c["stages"]["optimizer"]["unpaired"] == (0, 0)
    assert c["stages"]["optimizer"]["difference"]["mean"] == pytest.approx(0.005)
    assert c["stages"]["activations"]["names"] == ["activations-04"]
    assert c["stages"]["activations"]["unpaired"] == (1, 1)
    assert c["stages"]["filters"]["paired"] == 0 and c["stages"]["filters"]["unpaired"] == (0, 1)
    assert c["all"]["n"] == 3 and c["all"]["mean"] == pytest.approx((0.01 + 0.0 + 0.01) / 3)
    assert gpu_compare.main([str(tmp_path / "base"), str(tmp_path / "other" / "study.json"),
                             "--out", str(tmp_path / "cmp.md")]) == 0
    text = (tmp_path / "cmp.md").read_text()
    assert text == capsys.readouterr().out
    assert "matmul_precision 'highest' → 'tensorfloat32'" in text
    assert "achieved TFLOP/s: 50 → 100" in text and "200 s → 100 s" in text
    assert "| A: optimizers | 2 | 0 / 0 | +0.500 ± 0.500 |" in text
    assert "| B: activations | 1 | 1 / 1 | +1.000 (one pair) |" in text


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"trials": "none"})])
def test_gpu_compare_refuses_a_file_that_is_no_study_with_one_line(tmp_path, capsys, content):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"trials": [_trial("optimizer", 0, 0.9)]}))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert gpu_compare.main([str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: not a GPU study's study.json") and err.count("\n") == 1
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"trials": [_trial("optimizer", 0, 0.9, "SGD")]}))
    assert gpu_compare.main([str(good), str(other)]) == 2
    assert "no trial in common" in capsys.readouterr().err


def test_gpu_compare_of_the_two_committed_h200_slices():
    """The two H200 runs repeat one setting (MPS aside): A's eight trials pair; B's and C's do not, A's winners
    differ."""
    results = REPO / "bench/results/gpu"
    c = gpu_compare.compare(gpu_compare.load_run(results / "2026-11-25-h200-slice-timeshared.json"),
                            gpu_compare.load_run(results / "2026-11-25-h200-slice-mps.json"))
    assert c["stages"]["optimizer"]["paired"] == 8 and c["stages"]["q1a"]["paired"] == 1
    assert c["stages"]["activations"]["unpaired"] == (12, 12) and c["stages"]["filters"]["unpaired"] == (12, 12)
    assert c["winners"]["optimizer"][0]["config"]["optimizer"] == "Nadam"
    assert c["winners"]["optimizer"][1]["config"]["optimizer"] == "Adam"


def test_gpu_study_chain_study_starts_each_sweep_from_the_studys_winner():
    """--chain study: B and C are trained from the study's published winners, whatever won in this run
    (the committed tiny CPU runs: A's winner Adamax), so two runs' trials all pair."""
    from components.sweeps import SWEEPS

    assert gpu_study.build_parser().parse_args([]).chain == "own"
    study_b = SWEEPS["activations"].combination_at(SWEEPS["activations"].study.index)
    runs = [REPO / f"bench/results/gpu/2026-12-07-amd-epyc-2c-tiny-cpu-{k}.json" for k in ("fp32", "bf16")]
    for path in runs:
        res = json.loads(path.read_text())
        assert res["settings"]["chain"] == "study"
        assert res["stages"]["optimizer"]["winner"]["config"]["optimizer"] == "Adamax"
        later = [t for t in res["trials"] if t["stage"] in ("activations", "filters")]
        assert {t["config"]["optimizer"] for t in later} == {"Nadam"}
        assert {tuple(t["config"]["activations"]) for t in res["trials"] if t["stage"] == "filters"} == {study_b}
        assert "B and C started from the study's winners (--chain study), no GPU" in gpu_study.render_markdown(res)
    c = gpu_compare.compare(*(gpu_compare.load_run(p) for p in runs))
    assert c["all"]["n"] == 13 and all(st["unpaired"] == (0, 0) for st in c["stages"].values())
    assert c["settings"] == {"dtype_policy": ("float32", "mixed_bfloat16")}


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



@pytest.mark.parametrize("args, error", [
    ([], "error: expected DIR and OUT (bench/gpu_session.sh --help)"),
    (["{tmp}/none", "{tmp}/out"], "error: {tmp}/none/fashion-mnist: no such folder (the four Fashion-MNIST IDX files)"),
    (["{tmp}", "{tmp}/out", "--budget", "30"], "error: --budget 30: expected whole seconds, at least 60"),
    (["{tmp}", "{tmp}/out", "--budget", "ten"], "error: --budget ten: expected whole seconds, at least 60"),
    (["{tmp}", "{tmp}/out", "--fast"], "error: unknown option --fast (bench/gpu_session.sh --help)"),
])
def test_gpu_session_script_rejects_bad_input_with_one_line(tmp_path, args, error):
    """The prepared device command fails at once, before any device time is spent, on what it was given."""
    result = subprocess.run(["bash", str(REPO / "bench/gpu_session.sh"), *(a.format(tmp=tmp_path) for a in args)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == error.format(tmp=tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_pack_lowering_keeps_each_layout_it_measured_when_a_later_one_fails(tmp_path):
    """bench.pack_lowering writes its record after each layout: gpu_session.sh's time limit (or a layout that
    fails) leaves the ones measured, and the session picks the fastest of them."""
    pytest.importorskip("jax")
    out = tmp_path / "layouts.json"
    result = subprocess.run([sys.executable, "-m", "bench.pack_lowering", "--members", "2", "--images", "128",
                             "--layouts", "unroll:host,sideways:host", "--out", str(out)],
                            cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode != 0 and "sideways" in result.stderr  # the second layout does not exist
    runs = json.loads(out.read_text())["runs"]
    assert [(r["members"], r["lowering"], r["epoch_loop"]) for r in runs] == [(1, "unroll", "host"),
                                                                             (2, "unroll", "host")]
    assert all(r["images_per_second"] > 0 and r["images"] == 128 for r in runs)


@pytest.mark.slow
def test_finite_probe_runs_the_cnn_under_a_dtype_policy_here():
    """The study's CNN under mixed_bfloat16, Keras' and a one-member pack's inference, for real on this JAX."""
    pytest.importorskip("jax")
    result = run_probe({"kind": "finite", "dtype_policy": "mixed_bfloat16", "packed": True},
                       env={"KERAS_BACKEND": "jax"}, timeout=600)
    assert result["dtype_policy"] == "mixed_bfloat16" and result["backend"] == "jax"
    assert result["nonfinite"] == {"keras": 0, "packed": 0} and result["finite"] is True


def test_gpu_study_refuses_a_dtype_policy_the_backend_computes_nan_in(tmp_path, monkeypatch, capsys):
    """Under JAX 0.12.1 on a CPU, mixed_bfloat16 inference is NaN (found by gpu_session.sh --tiny: every bf16
    trial scored 10%). The study stops before any trial, with one line and exit status 2, and says why."""
    import bench.probe

    seen = []

    def probe(spec, env=None, timeout=0, log_path=None):
        seen.append((spec, env))
        return {"dtype_policy": "mixed_bfloat16", "backend": "jax", "nonfinite": {"keras": 2560, "packed": 1},
                "finite": False, "kind": "finite"}

    monkeypatch.setattr(bench.probe, "run_probe", probe)
    out = tmp_path / "run"
    assert gpu_study.main(["--data", str(tmp_path / "no-data-needed"), "--out", str(out), "--packed",
                           "--dtype-policy", "mixed_bfloat16", "--parallel", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "error: --dtype-policy mixed_bfloat16: the study's CNN computes non-finite outputs on this backend (jax ")
    assert "{'keras': 2560, 'packed': 1}), so every trial would score chance accuracy" in err
    assert [s["kind"] for s, _ in seen] == ["finite"]  # before the GEMM probe, the data and any trial
    assert seen[0][0]["packed"] is True and seen[0][1]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.300"
    recorded = json.loads((out / "study.json").read_text())
    assert recorded["finite"]["finite"] is False and recorded["trials"] == []
    assert not (out / "data").exists() and not (out / "trials").exists()


def test_gpu_study_wall_time_starts_after_the_machine_checks(tmp_path, monkeypatch, fmnist_dir):
    """The finite check and the GEMM rates measure the machine: their time is reported apart, not in the
    study's wall time (#17's 180 s are the study's). A fake clock that only the two probes advance."""
    import time as real_time

    import bench.probe

    class Clock:
        now = 1000.0
        strftime = staticmethod(real_time.strftime)

        def time(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(gpu_study, "time", clock)

    def probe(spec, env=None, timeout=0, log_path=None):
        clock.now += {"finite": 30.0, "gemm_rates": 20.0}[spec["kind"]]
        if spec["kind"] == "finite":
            return {"dtype_policy": "float32", "backend": "jax", "nonfinite": {"keras": 0}, "finite": True}
        return {"n": 8, "device": "cpu:0", "backend": "cpu", "rates": {"float32": {"tflops": 0.1}}}

    monkeypatch.setattr(bench.probe, "run_probe", probe)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    out = tmp_path / "run"
    assert gpu_study.main(["--data", str(fmnist_dir), "--out", str(out), "--stages", "", "--no-q1a",
                           "--train-size", "100", "--test-size", "20", "--parallel", "1"]) == 0
    res = json.loads((out / "study.json").read_text())
    assert res["checks_s"] == 50.0 and res["wall_s"] == 0.0 and res["data_counts"]["test"] == 20
    assert "(0.0 min), from the data on; the checks before it (finite outputs, GEMM rates) took 50 s" in \
        (out / "study.md").read_text()


def test_gpu_study_spreads_a_stages_packs_over_its_workers(tmp_path):
    """--packed with --pack-slots made sweep B (one pack key) one pack of 81 on one worker, 12 members at a
    time, the other workers idle: gpu_session.sh's plan. Every worker now gets a pack where the trials allow."""
    from components.sweeps import start_settings

    args = gpu_study.build_parser().parse_args(["--packed", "--parallel", "4", "--pack-slots", "12",
                                                "--out", str(tmp_path)])
    study = gpu_study.Study(args)
    study.data = str(tmp_path / "data")
    fixed = {**start_settings(), "optimizer": "Nadam"}
    b = study.stage_tasks("activations", fixed)
    assert [len(p) for p in study.packs(b)] == [21, 20, 20, 20]
    assert sorted(t["name"] for p in study.packs(b) for t in p) == sorted(t["name"] for t in b)
    assert [len(p) for p in study.packs(study.stage_tasks("optimizer", fixed))] == [1] * 8
    assert len(study.packs(study.stage_tasks("filters", fixed))) == 81
    args.pack_size = 8
    assert [len(p) for p in study.packs(b)] == [8] * 4 + [7] * 7  # 11 packs of at most 8, near-equal


def test_gpu_study_pads_sweep_c_into_nine_programs_largest_first(tmp_path):
    """--pad-filters 3,4: sweep C's 81 shapes are 9 packs of 9, one per (conv1, conv2) pair, submitted by
    what their padded programs run (conv3 and conv4 at 64), so the 64,64 pair goes first and 16,16 last."""
    from bench.flops import study_cnn_forward_flops
    from components.sweeps import start_settings

    args = gpu_study.build_parser().parse_args(["--packed", "--parallel", "9", "--pad-filters", "4,3",
                                                "--out", str(tmp_path)])
    assert args.pad_filters == (3, 4)
    study = gpu_study.Study(args)
    study.data = str(tmp_path / "data")
    c = study.stage_tasks("filters", {**start_settings(), "optimizer": "Nadam"})
    packs = study.packs(c)
    assert [len(p) for p in packs] == [9] * 9
    heads = [tuple(int(f) for f in p[0]["config"]["filters"][:2]) for p in packs]
    assert len(set(heads)) == 9 and heads[0] == (64, 64) and heads[-1] == (16, 16)
    work = [study_cnn_forward_flops((*h, 64, 64)) for h in heads]
    assert work == sorted(work, reverse=True)
    assert len(study.packs(study.stage_tasks("activations", {**start_settings(), "optimizer": "Nadam"}))) == 9
    for bad in ("5", "x"):
        with pytest.raises(SystemExit) as exit_info:
            gpu_study.build_parser().parse_args(["--pad-filters", bad])
        assert exit_info.value.code == 2
    # What it records is what its packs run: over 18 workers each (conv1, conv2) group of 9 splits in two, and
    # a part without conv3 = 64 or conv4 = 64 pads less than the whole group would.
    from bench.flops import packed_flops_ratio, padding_waste
    from components.cnn.hparams import TrialConfig

    class Pool:  # takes the packs; trains nothing
        def submit(self, fn, arg):
            return object()

    args.parallel = 18
    study.submit(Pool(), c)
    split = [[TrialConfig(**t["config"]) for t in p] for p in study.packs(c)]
    assert len(split) == 18
    recorded = study.results["padding_waste"]["filters"]
    whole_groups = padding_waste([m for p in split for m in p], (3, 4))
    assert recorded == packed_flops_ratio(split, (3, 4)) < round(whole_groups, 3)
    # study.md says what the padding cost (a CPU run of sweep C padded, bench/results/gpu/).
    results = json.loads((REPO / "bench/results/gpu/2026-12-07-amd-epyc-2c-tiny-cpu-sweep-c-padded.json").read_text())
    assert results["settings"]["pad_filters"] == [3, 4]
    assert "conv layers 3,4 padded to each pack's largest filter count" in gpu_study.render_markdown(results)
    assert "(C: filters 1.22× its own FLOPs; the TFLOP/s below count each trial's own)" in \
        gpu_study.render_markdown(results)


def test_gpu_study_report_sets_the_first_epoch_apart_from_the_later_ones():
    """On the H200 a Keras trial's first epoch (trace, compile, autotune beside 11 others) took 52 s and each
    later one 2 s: the stages table says what compiling costs beside training."""
    results = json.loads((REPO / "bench/results/gpu/2026-11-25-h200-slice-mps.json").read_text())
    text = gpu_study.render_markdown(results)
    assert ("| stage | trials | failed | wall s | mean trial s | mean first epoch s | mean later epoch s | winner |"
            in text)
    a = [r for r in results["trials"] if r["stage"] == "optimizer"]
    first = statistics.mean(r["epoch_seconds"][0] for r in a)
    later = statistics.mean(statistics.median(r["epoch_seconds"][1:]) for r in a)
    assert 40 < first < 60 and 1.5 < later < 3  # what the run's log shows
    assert f"| {first:,.1f} | {later:,.1f} | optimizer-06 |" in text
    no_epochs = [{"epoch_seconds": [9.0]}, {"error": "x", "epoch_seconds": [1, 2]}]
    assert gpu_study_report.epoch_split(no_epochs) == ("–", "–")


_CACHE_PROBE = """
import jax, jax.numpy as jnp
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event))
jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))).block_until_ready()
from jax._src import compiler  # the options JAX hands XLA with the cache on (on a GPU: autotuning results shared)
options = compiler.get_compile_options(1, 1)  # kept: its debug options are a view into it
build = options.executable_build_options
autotune = build.debug_options.xla_gpu_per_fusion_autotune_cache_dir
print(hits.count('/jax/compilation_cache/cache_hits'), hits.count('/jax/compilation_cache/cache_misses'), autotune)
"""


def test_gpu_study_workers_share_a_persistent_compile_cache_jax_reads(tmp_path, monkeypatch):
    """The workers' environment names a JAX compilation cache: a program one process compiled, the next one
    (another worker, or the same run resumed after a time limit) reads back. Checked against JAX itself:
    the variable is what it reads, a second process hits what the first wrote."""
    pytest.importorskip("jax")
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    env = gpu_study.worker_environment(4, cache=str(tmp_path / "jax-cache"))
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax-cache")
    assert "JAX_COMPILATION_CACHE_DIR" not in gpu_study.worker_environment(4, cache=None)
    # The study's programs compile for seconds; this one in milliseconds, so no minimum here.
    child = {**os.environ, **env, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PLATFORMS": "cpu"}
    counts = [subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=child, capture_output=True, text=True,
                             timeout=120, check=True).stdout.split() for _ in range(2)]
    assert counts[0][0] == "0" and int(counts[0][1]) >= 1  # the first process compiled, and wrote
    assert int(counts[1][0]) >= 1 and counts[1][1] == "0"  # the second read it back
    assert any((tmp_path / "jax-cache").iterdir())
    # JAX also points XLA's per-fusion autotuning cache there: sweep C's 81 shapes hold a few dozen distinct
    # convolutions, each autotuned on the GPU once for all the workers' programs, not once per program.
    assert counts[0][2] == counts[1][2] == str(tmp_path / "jax-cache" / "xla_gpu_per_fusion_autotune_cache_dir")
    # The report says whether a run started warm, since its first epochs then compiled less.
    results = json.loads((REPO / "bench/results/gpu/2026-11-25-h200-slice-mps.json").read_text())
    results["settings"]["compile_cache"] = {"dir": str(tmp_path / "jax-cache"), "entries_at_start": 0}
    assert "; JAX compilation cache cold (empty at the start)" in gpu_study.render_markdown(results)
    results["settings"]["compile_cache"]["entries_at_start"] = 12
    assert "cache **warm** (12 entries at the start" in gpu_study.render_markdown(results)


def test_gpu_study_submits_the_largest_packs_first(tmp_path):
    """Sweep C's 81 shapes differ 13-fold in FLOPs; submitted in grid order over 9 workers the stage's FLOP
    makespan is 10% above the even share, largest first 0.6% (list scheduling, bench.gpu_study_helpers)."""
    from bench.flops import study_cnn_forward_flops, training_flops
    from components.sweeps import start_settings

    args = gpu_study.build_parser().parse_args(["--packed", "--parallel", "9", "--out", str(tmp_path)])
    study = gpu_study.Study(args)
    study.data = str(tmp_path / "data")
    c = study.stage_tasks("filters", {**start_settings(), "optimizer": "Nadam"})
    work = [training_flops(study_cnn_forward_flops(p[0]["config"]["filters"])) for p in study.packs(c)]
    assert work == sorted(work, reverse=True) and len(work) == 81
    grid = [training_flops(study_cnn_forward_flops(t["config"]["filters"])) for t in c]
    assert gpu_study.makespan(grid, 9) / (sum(grid) / 9) > 1.09
    assert gpu_study.makespan(work, 9) / (sum(work) / 9) < 1.01
    assert round(max(work) / min(work)) == 13
    docs = " ".join((REPO / "README.md").read_text().split())
    assert "differ 13-fold, and in grid order its FLOP makespan on 9 workers is 10% above an even share" in docs
