"""The benchmark's items. Each is ``item_*(ctx) -> dict``; :data:`ITEMS` numbers them as issue 7 does
(item 8, the set-up time, lives in bench/install.py).

Every item returns the same shape (see :func:`new_result`): its settings, the
measured numbers, a headline, the target and whether it was met, a table for
the Markdown report, notes, and files it wrote. Sizes come from
:data:`FULL_SIZES` / :data:`QUICK_SIZES`, overridable one by one.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import flops, stats
from bench.install import item_install
from bench.probe import REPO, run_probe
from bench.smoke_run import item_smoke_run
from bench.timeline import (
    epoch_seconds,
    hook_environment,
    processes,
    read_events,
    step_processes,
    trial_breakdown,
    warmup_split,
)

# ---------------------------------------------------------------------------- sizes

FULL_SIZES: dict = {
    # Items 1-4: the artifact the probes train on (None: all of Fashion-MNIST) and the measurement.
    "data_train_size": None, "data_test_size": None,
    "train_images": 10240, "epochs": 4, "batch_size": 128,  # 1 warm-up epoch + 3 measured (median)
    "gemm_n": 4096, "gemm_repeats": 5,
    "variants": "baseline,threads,xla,spe8,threads+spe8,batch256",
    "backends": "tensorflow,jax,torch",
    "pipeline_repeats": 20,
    # Item 2: fp32 vs mixed_bfloat16, the same epochs on the same data and seed.
    "acc_train_size": None, "acc_test_size": None, "acc_epochs": 3,
    # Item 5: the reduced setting of the activation sweep, replayed strategies.
    "search_train_size": 6000, "search_test_size": 1000, "search_epochs": 3, "search_values": "elu,relu,selu",
    "search_layers": 4, "search_optimizer": "Nadam", "search_parallel": 1, "search_seeds": 20,
    "search_samplers": "random,tpe", "medianstop_min_trials": 3, "medianstop_start_steps": "1,2",
    "search_threshold_pp": 0.2,
    # Item 6: trials through the local backend, and imports per backend.
    "overhead_trials": 3, "overhead_train_size": 6000, "overhead_test_size": 1000, "overhead_epochs": 3,
    "import_repeats": 3,
    # Item 7: the smoke pipeline through kfp.local (overrides as `study run --set`).
    "pipeline_profile": "smoke", "pipeline_set": [],
    # Item 9: `make run`'s smoke pipeline as it is (overrides only for the harness check).
    "smoke_set": [],
    "probe_timeout_s": 3600,
}
QUICK_SIZES: dict = {
    **FULL_SIZES,
    "data_train_size": 1000, "data_test_size": 300,
    "train_images": 384, "epochs": 3, "gemm_n": 512, "gemm_repeats": 3,
    "variants": "baseline,threads", "pipeline_repeats": 3,
    "acc_train_size": 1000, "acc_test_size": 300, "acc_epochs": 2,
    "search_train_size": 500, "search_test_size": 200, "search_epochs": 2, "search_values": "relu,selu",
    "search_layers": 2, "search_seeds": 5, "medianstop_min_trials": 1, "medianstop_start_steps": "1",
    "overhead_trials": 1, "overhead_train_size": 500, "overhead_test_size": 200, "overhead_epochs": 2,
    "import_repeats": 1,
    "pipeline_set": ["data.train_size=600", "data.test_size=200", "train.epochs=1",
                     "sweeps.max_trials={optimizer: 1, activations: 1, filters: 1}"],
    "smoke_set": ["data.train_size=600", "data.test_size=200", "train.epochs=1",
                  "sweeps.max_trials={optimizer: 8, activations: 3, filters: 3}"],
    "probe_timeout_s": 900,
}
SEED_TRAIN_IMAGES, SEED_EPOCHS = 54000, 10  # the seed profile's trial, for projections
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _variant_settings(name: str, cores: int) -> tuple[dict, dict]:
    """A training variant (``a+b`` combines) as probe spec overrides and environment."""
    spec, env = {}, {}
    for part in name.split("+"):
        if part == "baseline":
            pass  # as components.cnn.train runs a trial: jit "auto", 1 step per execution, default threads
        elif part == "xla":
            spec["jit_compile"] = True
        elif part == "nojit":
            spec["jit_compile"] = False
        elif part == "noonednn":  # TensorFlow's own (Eigen) kernels instead of oneDNN's
            env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        elif part == "threads":  # one op at a time, each using every core
            env.update(TF_NUM_INTRAOP_THREADS=str(cores), TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS=str(cores))
            spec["torch_threads"] = cores
        elif part.startswith("spe"):
            spec["steps_per_execution"] = int(part[3:])
        elif part.startswith("batch"):
            spec["batch_size"] = int(part[5:])
        else:
            raise ValueError(f"variant part {part!r}: expected baseline, xla, nojit, noonednn, threads, speN "
                             "or batchN")
    return spec, env


# -------------------------------------------------------------------------- context

@dataclass
class Context:
    sizes: dict
    work: Path
    out_dir: Path
    stem: str
    backend: str = "tensorflow"
    quick: bool = False
    log: Callable[[str], None] = print
    cache: dict = field(default_factory=dict)

    @property
    def cores(self) -> int:
        from bench.machine import usable_cores

        return usable_cores()

    def dataset(self, train_size: int | None, test_size: int | None) -> str:
        """A dataset artifact of these sizes (seeded, stratified), prepared once per work folder."""
        from components.data import METADATA, DataSettings, prepare_dataset

        path = self.work / f"data-{train_size or 'all'}-{test_size or 'all'}"
        if not (path / METADATA).exists():
            self.log(f"data: preparing {path}")
            prepare_dataset(DataSettings(train_size=train_size, test_size=test_size, seed=42), str(path))
        return str(path)

    def probe(self, spec: dict, env: dict | None = None, backend: str | None = None) -> dict:
        backend = backend or self.backend
        env = {"KERAS_BACKEND": backend, **(env or {})}
        self.log(f"probe: {spec['kind']} {backend} {json.dumps({k: v for k, v in spec.items() if k != 'data'})}")
        return run_probe({**spec, "backend": backend}, env=env, timeout=self.sizes["probe_timeout_s"],
                         log_path=self.work / "probes.log")

    def gemm(self, backend: str, dtype: str = "float32") -> dict:
        key = (backend, dtype)
        if key not in self.cache:
            self.cache[key] = self.probe({"kind": "gemm", "n": self.sizes["gemm_n"], "dtype": dtype,
                                          "repeats": self.sizes["gemm_repeats"]}, backend=backend)
        return self.cache[key]


def new_result(number: int, name: str, title: str) -> dict:
    return {"id": number, "name": name, "title": title, "status": "ok", "settings": {}, "results": {},
            "headline": "", "target": {"text": "", "met": None}, "table": {"columns": [], "rows": []},
            "notes": [], "files": {}, "seconds": None}


def backend_installed(backend: str) -> bool:
    return importlib.util.find_spec(BACKEND_MODULES.get(backend, backend)) is not None


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _num(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


# ------------------------------------------------------------------- 1. throughput

def item_throughput(ctx: Context) -> dict:
    r = new_result(1, "throughput", "Trial throughput vs the machine's ceiling")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    forward = flops.seed_cnn_forward_flops()
    gemm = ctx.gemm(ctx.backend)
    ceiling = flops.ceiling_images_per_second(gemm["flops_per_second"], forward)
    r["settings"] = {"backend": ctx.backend, "train_images": s["train_images"], "epochs": s["epochs"],
                     "measured_epochs": s["epochs"] - 1, "batch_size": s["batch_size"], "gemm_n": s["gemm_n"]}
    rows, variants = [], {}
    for name in [v.strip() for v in str(s["variants"]).split(",") if v.strip()]:
        spec_extra, env = _variant_settings(name, ctx.cores)
        spec = {"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                "batch_size": s["batch_size"], **spec_extra}
        try:
            res = ctx.probe(spec, env)
        except Exception as err:  # noqa: BLE001 - one variant failing is a row, not the end
            variants[name] = {"error": str(err)}
            rows.append([name, "failed", "–", "–", "–", str(err)[:80]])
            continue
        share = res["images_per_second"] / ceiling
        variants[name] = {**res, "share_of_ceiling": share, "env": env}
        rows.append([name, _num(res["images_per_second"]), _pct(share),
                     f"{res['warmup_epoch_seconds']:.1f} s",
                     f"jit={res['jit_compile']} spe={res['steps_per_execution']} batch={res['batch_size']}",
                     ", ".join(f"{k}={v}" for k, v in env.items()) or "defaults"])
        if res["forward_flops_per_image"] != forward:
            r["notes"].append(f"FLOPs read from the built model ({res['forward_flops_per_image']:,}) differ from "
                              f"the analytic count ({forward:,})")
    ok = {k: v for k, v in variants.items() if "error" not in v}
    r["results"] = {
        "forward_flops_per_image": forward,
        "training_flops_per_image": flops.training_flops(forward),
        "gemm": gemm,
        "ceiling_images_per_second": ceiling,
        "variants": variants,
    }
    r["table"] = {"columns": ["variant", "images/s", "of ceiling", "warm-up epoch", "compile settings", "threads"],
                  "rows": rows}
    r["notes"].insert(0, f"Ceiling: {gemm['flops_per_second'] / 1e9:.0f} GFLOP/s fp32 GEMM (n={gemm['n']}, "
                         f"{ctx.backend}) / {flops.training_flops(forward) / 1e6:.1f} MFLOP per training image "
                         f"(3 × {forward / 1e6:.2f}) = {ceiling:,.0f} images/s.")
    r["notes"].append("baseline = components.cnn.train's settings (jit_compile auto: off for TensorFlow on a CPU, on "
                      "for JAX; 1 step per execution; default threads). batchN changes a trial hyperparameter.")
    if ok:
        best_name = max(ok, key=lambda k: ok[k]["images_per_second"])
        best = ok[best_name]
        base = ok.get("baseline")
        r["results"]["best_variant"] = best_name
        r["headline"] = (f"{best['images_per_second']:,.0f} images/s = {_pct(best['share_of_ceiling'])} of the "
                         f"ceiling ({best_name})" + (f"; baseline {_pct(base['share_of_ceiling'])}" if base and
                                                     best_name != "baseline" else ""))
        r["target"] = {"text": "≥ 90% of the ceiling", "met": best["share_of_ceiling"] >= 0.9}
    else:
        r["status"] = "failed"
    return r


# ------------------------------------------------------------------------- 2. bf16

def item_bf16(ctx: Context) -> dict:
    r = new_result(2, "bf16", "bf16 (mixed_bfloat16) vs fp32: speed and accuracy")
    s = ctx.sizes
    data = ctx.dataset(s["acc_train_size"], s["acc_test_size"])
    from bench.machine import cpu_info

    flags = cpu_info()["flags"]
    r["settings"] = {"backend": ctx.backend, "data": Path(data).name, "epochs": s["acc_epochs"],
                     "batch_size": s["batch_size"], "seed": 1, "cpu_bf16_flags": [f for f in flags if "bf16" in f]}
    runs = {}
    for policy in ("float32", "mixed_bfloat16"):
        runs[policy] = ctx.probe({"kind": "train", "data": data, "epochs": s["acc_epochs"],
                                  "batch_size": s["batch_size"], "dtype_policy": policy, "evaluate": True, "seed": 1})
    g32, g16 = ctx.gemm(ctx.backend, "float32"), ctx.gemm(ctx.backend, "bfloat16")
    fp, bf = runs["float32"], runs["mixed_bfloat16"]
    speedup = bf["images_per_second"] / fp["images_per_second"]
    gemm_ratio = g16["flops_per_second"] / g32["flops_per_second"]
    diff = stats.paired_accuracy_difference(_bits(fp), _bits(bf))
    r["results"] = {
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "test_correct_bits"} for k, v in runs.items()},
        "gemm": {"float32": g32, "bfloat16": g16}, "gemm_ratio": gemm_ratio,
        "speedup": speedup, "accuracy_change": diff,
    }
    r["table"] = {"columns": ["policy", "images/s", "test accuracy", "GEMM GFLOP/s", "peak memory"],
                  "rows": [[p, _num(runs[p]["images_per_second"]), _pct(runs[p]["test_accuracy"], 2),
                            _num(g["flops_per_second"] / 1e9), f"{runs[p]['peak_rss_mb']:,.0f} MB"]
                           for p, g in (("float32", g32), ("mixed_bfloat16", g16))]}
    loss_ok = diff["difference_pp"] >= -0.3
    met = speedup >= 1.5 and loss_ok
    r["headline"] = (f"{speedup:.2f}× images/s, test accuracy {diff['difference_pp']:+.2f} pp "
                     f"(± {diff['standard_error_pp']:.2f} pp)")
    r["target"] = {"text": "≥ 1.5× images/s at ≤ 0.3 pp accuracy loss", "met": met}
    if not met:
        reasons = []
        if speedup < 1.5:
            if gemm_ratio < 1.5:
                reasons.append(f"the backend's bf16 GEMM itself runs only {gemm_ratio:.2f}× the fp32 rate here, "
                               "so no model can gain 1.5× from it")
            else:
                reasons.append(f"bf16 GEMM is {gemm_ratio:.2f}× fp32, but training gains only {speedup:.2f}×: "
                               "mixed precision keeps variables, batch norm statistics, the softmax's loss and the "
                               "optimizer in fp32 and adds casts, so the non-GEMM share grows")
        if not loss_ok:
            reasons.append(f"accuracy fell by {-diff['difference_pp']:.2f} pp (more than 0.3)")
        r["results"]["why_not"] = "; ".join(reasons)
        r["notes"].append("Not reached: " + r["results"]["why_not"] + ".")
    if abs(diff["difference_pp"]) < 2 * diff["standard_error_pp"]:
        r["notes"].append("The accuracy change is within 2 standard errors of zero: at this size it cannot be told "
                          "from noise (more test images or epochs narrow it).")
    r["notes"].append(f"Accuracy after {s['acc_epochs']} epochs, same seed and data; the ± is the standard error of "
                      f"the paired difference on {diff['n']:,} test images ({diff['only_a']} right only in fp32, "
                      f"{diff['only_b']} only in bf16).")
    return r


def _bits(run: dict) -> list[bool]:
    import numpy as np

    packed = np.frombuffer(base64.b64decode(run["test_correct_bits"]), dtype=np.uint8)
    return [bool(b) for b in np.unpackbits(packed)[: run["test_images"]]]


# --------------------------------------------------------------------- 3. backends

def item_backends(ctx: Context) -> dict:
    r = new_result(3, "backends", "The same trial under Keras' TensorFlow, JAX and PyTorch backends")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    forward = flops.seed_cnn_forward_flops()
    r["settings"] = {"train_images": s["train_images"], "epochs": s["epochs"], "batch_size": s["batch_size"],
                     "settings": "components.cnn.train's (baseline)"}
    rows, per = [], {}
    for backend in [b.strip() for b in str(s["backends"]).split(",") if b.strip()]:
        if not backend_installed(backend):
            reason = f"{BACKEND_MODULES.get(backend, backend)} is not installed"
            if backend == "torch":
                reason += " (PyTorch is not part of the default install: `uv pip install -e '.[gp]'` adds it)"
            per[backend] = {"skipped": reason}
            rows.append([backend, "not installed", "–", "–", "–", "–"])
            continue
        try:
            gemm = ctx.gemm(backend)
            res = ctx.probe({"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                             "batch_size": s["batch_size"]}, backend=backend)
        except Exception as err:  # noqa: BLE001
            per[backend] = {"error": str(err)}
            rows.append([backend, "failed", "–", "–", "–", str(err)[:80]])
            continue
        ceiling = flops.ceiling_images_per_second(gemm["flops_per_second"], forward)
        per[backend] = {**res, "gemm": gemm, "ceiling_images_per_second": ceiling,
                        "share_of_ceiling": res["images_per_second"] / ceiling}
        rows.append([backend, _num(res["images_per_second"]), _pct(res["images_per_second"] / ceiling),
                     f"{res['peak_rss_mb']:,.0f} MB", f"{res['warmup_epoch_seconds']:.1f} s",
                     f"jit={res['jit_compile']}; GEMM {gemm['flops_per_second'] / 1e9:,.0f} GFLOP/s"])
    r["results"] = {"backends": per}
    r["table"] = {"columns": ["backend", "images/s", "of its ceiling", "peak memory (RSS)", "warm-up epoch", "notes"],
                  "rows": rows}
    ok = {k: v for k, v in per.items() if "images_per_second" in v}
    if ok:
        best = max(ok, key=lambda k: ok[k]["images_per_second"])
        r["headline"] = ", ".join(f"{k} {v['images_per_second']:,.0f}" for k, v in ok.items()) + \
            f" images/s (fastest: {best})"
    r["target"] = {"text": "(no target: a comparison)", "met": None}
    r["notes"].append("Peak memory is the probe process's maximum resident set (ru_maxrss): the backend, the model, "
                      "the float32 training images and the input path together.")
    return r


# ---------------------------------------------------------------- 4. input pipeline

def item_pipeline(ctx: Context) -> dict:
    r = new_result(4, "input_pipeline", "Input pipeline: share of step time spent waiting for data")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    r["settings"] = {"backend": ctx.backend, "train_images": s["train_images"], "epochs": s["epochs"],
                     "batch_size": s["batch_size"], "input": "model.fit on the float32 arrays from the .npy "
                     "artifact, shuffled (as components.cnn.train)", "compute_repeats": s["pipeline_repeats"]}
    res = ctx.probe({"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                     "batch_size": s["batch_size"], "pipeline": True, "pipeline_repeats": s["pipeline_repeats"]})
    p = res["pipeline"]
    r["results"] = {"probe": res, **p}
    r["table"] = {"columns": ["per step", "seconds", "share of fit's step"],
                  "rows": [["fit (real data, shuffled)", f"{p['fit_step_s']:.4f}", "100%"],
                           ["same step on a batch already in memory", f"{p['compute_step_s']:.4f}",
                            _pct(p["compute_step_s"] / p["fit_step_s"])],
                           ["data path alone (backend's fit iterator, no training)",
                            "–" if p["data_step_s"] is None else f"{p['data_step_s']:.4f}", _pct(p["data_share"])]]}
    r["headline"] = (f"{_pct(p['wait_share'])} of the step not spent computing "
                     f"(data path alone: {_pct(p['data_share'])})")
    r["target"] = {"text": "≤ 5% waiting for data", "met": p["wait_share"] <= 0.05}
    r["notes"].append("Waiting share = (fit's step − the same step on a resident batch) / fit's step: everything fit "
                      "does besides computing, so an upper bound on waiting for data. The data path alone is what "
                      "the input would cost if nothing overlapped it (TensorFlow prefetches; JAX/PyTorch iterate "
                      "the numpy arrays in the training loop).")
    if p["wait_share_raw"] < 0:
        r["notes"].append(f"The raw difference was negative ({p['wait_share_raw']:.1%}): within timing noise, "
                          "shown as 0.")
    return r


# ------------------------------------------------------------- 5. search efficiency

def _search_sweep(values: list[str], layers: int):
    from katib.spaces import Parameter, Sweep

    params = tuple(Parameter(f"activation{i}", "categorical", tuple(values) if i <= layers else (values[0],))
                   for i in range(1, 5))
    return Sweep(name="activations", description="bench: the activation sweep on a reduced setting",
                 parameters=params, setting="activations")


def item_search(ctx: Context) -> dict:
    from bench import search
    from katib.backends.local import run_experiment
    from katib.backends.local.experiment_spec import read_experiment
    from katib.backends.local.samplers import create_sampler
    from katib.backends.local.search_space import optuna_search_space, parameter_assignments
    from katib.experiments import ExperimentOptions, build_experiment
    from katib.spaces import BASE_SETTINGS

    r = new_result(5, "search_efficiency", "Search efficiency: trial-epochs until within 0.2 pp of the grid's best")
    s = ctx.sizes
    values = [v.strip() for v in str(s["search_values"]).split(",") if v.strip()]
    sweep = _search_sweep(values, int(s["search_layers"]))
    data = ctx.dataset(s["search_train_size"], s["search_test_size"])
    run_dir = ctx.work / f"search-{Path(data).name}-e{s['search_epochs']}-{'-'.join(values)}-l{s['search_layers']}"
    opts = ExperimentOptions(data_uri=str(Path(data).resolve()), output_root=str((run_dir / "outputs").resolve()),
                             fixed={**BASE_SETTINGS, "optimizer": s["search_optimizer"]},
                             epochs=int(s["search_epochs"]),
                             batch_size=int(s["batch_size"]), seed=1, parallel_trials=int(s["search_parallel"]),
                             max_failed_trials=sweep.grid_size, command=(sys.executable, "-m", "pipelines.cli"))
    experiment = build_experiment(sweep, opts)
    r["settings"] = {"train_images": s["search_train_size"], "epochs": s["search_epochs"], "values": values,
                     "layers_varied": s["search_layers"], "grid_size": sweep.grid_size,
                     "optimizer": s["search_optimizer"], "data_seed": 42, "trial_seed": 1,
                     "replay_seeds": s["search_seeds"], "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    from katib.backends.local.records import load_records

    reused = sum(1 for rec in load_records(run_dir) if rec.finished) if run_dir.exists() else 0
    log_file = ctx.work / "search.log"
    ctx.log(f"search: running the {sweep.grid_size}-point grid in {run_dir} (trial output in {log_file})")
    started = time.perf_counter()
    with open(log_file, "a", encoding="utf-8") as log:
        def sweep_log(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            if not line.startswith("[") or " started: " in line or "] Succeeded" in line or "] Failed" in line:
                ctx.log("  " + line)

        result = run_experiment(experiment, run_dir, log=sweep_log)
    grid_wall = time.perf_counter() - started
    spec = read_experiment(experiment)
    histories, order = {}, []
    for rec in result.trials:
        if rec.objective_history:
            key = tuple(a["value"] for a in rec.assignments)
            histories[key] = list(rec.objective_history)
            order.append(key)
    if not histories:
        r["status"] = "failed"
        r["notes"].append(f"no trial reported {spec.objective_metric}; see {log_file}")
        return r
    grid_best = max(max(h) for h in histories.values())
    threshold = grid_best - s["search_threshold_pp"] / 100
    grid_epochs = sum(len(h) for h in histories.values())
    key_of = lambda params: tuple(a["value"] for a in parameter_assignments(spec.parameters, params))  # noqa: E731
    space = optuna_search_space(spec.parameters)

    strategies, curves = [], {}
    grid_run = search.grid_events(order, histories)
    strategies.append(search.summarize_strategy("grid (as it ran)", [grid_run], threshold, grid_epochs))
    curves["grid"] = search.best_so_far(grid_run)
    for step in [int(x) for x in str(s["medianstop_start_steps"]).split(",") if x.strip()]:
        if step >= int(s["search_epochs"]):
            continue  # a rule from the last epoch on stops nothing
        events = search.medianstop_events(order, histories, int(s["medianstop_min_trials"]), step)
        name = f"grid + medianstop (start_step {step})"
        strategies.append(search.summarize_strategy(name, [events], threshold, grid_epochs))
        curves[name] = search.best_so_far(events)
    for algorithm in [a.strip() for a in str(s["search_samplers"]).split(",") if a.strip()]:
        runs = [search.sampler_events(lambda a=algorithm, seed=seed: create_sampler(a, {"random_state": str(seed)},
                                                                                   spec.parameters),
                                      space, key_of, histories, budget_trials=len(order))
                for seed in range(int(s["search_seeds"]))]
        strategies.append(search.summarize_strategy(f"{algorithm} (median of {len(runs)} seeds)", runs, threshold,
                                                    grid_epochs))
        curves[f"{algorithm} (median)"] = search.median_curve([search.best_so_far(e) for e in runs])

    png = f"{ctx.stem}-search.png"
    from katib.backends.local.files import write_atomic

    write_atomic(ctx.out_dir / png, lambda tmp: search.plot_curves(
        curves, threshold, grid_best, tmp,
        f"{sweep.grid_size}-point activation grid, {s['search_train_size']} images × {s['search_epochs']} epochs"))
    r["files"]["curves_png"] = png
    best_key = max(histories, key=lambda k: max(histories[k]))
    others = [x for x in strategies[1:] if x["share_of_grid"] is not None]
    best = min(others, key=lambda x: x["share_of_grid"]) if others else None
    r["results"] = {
        "grid_best": grid_best, "grid_best_setting": list(best_key), "threshold": threshold,
        "grid_trial_epochs": grid_epochs, "grid_trials": len(order), "grid_wall_s": grid_wall,
        "reused_trials": reused,
        "strategies": strategies, "curves": {k: [list(p) for p in v] for k, v in curves.items()},
        "histories": {",".join(k): v for k, v in histories.items()}, "run_dir": str(run_dir),
    }
    r["table"] = {"columns": ["strategy", "trial-epochs to within 0.2 pp", "share of the grid's", "reached",
                              "budget spent", "best found"],
                  "rows": [[x["strategy"], _num(x["epochs_to_reach_median"], 1 if x["runs"] > 1 else 0),
                            _pct(x["share_of_grid"]), f"{x['reached']}/{x['runs']}", _num(x["budget_epochs_median"]),
                            _pct(x["best_found_median"], 2)] for x in strategies]}
    r["headline"] = (f"grid best {grid_best:.2%} ({','.join(best_key)}) after {grid_epochs} trial-epochs; "
                     + (f"{best['strategy']} reaches within 0.2 pp at {_pct(best['share_of_grid'])} of that"
                        if best else "no other strategy reached within 0.2 pp"))
    r["target"] = {"text": "≤ 40% of the grid's trial-epochs", "met": bool(best and best["share_of_grid"] <= 0.4)}
    r["notes"].append("The grid ran for real (local Katib backend, Optuna's GridSampler order); the other strategies "
                      "are replayed on its recorded per-epoch val_accuracy: Katib's medianstop rule in the grid's "
                      "order, TPE/random with the local backend's own samplers, the same or smaller budget "
                      "(at most as many trials as the grid; a repeated suggestion costs again).")
    if reused:
        r["notes"].append(f"{reused} finished trial(s) were reused from an earlier run in {run_dir} (the local "
                          "backend resumes); delete it to run the grid again.")
    if result.trials and len(order) < len(result.trials):
        r["notes"].append(f"{len(result.trials) - len(order)} grid trial(s) reported nothing and are left out.")
    return r


# ---------------------------------------------------------------- 6. sweep overhead

def item_sweep_overhead(ctx: Context) -> dict:
    from katib.backends.local import run_experiment
    from katib.experiments import ExperimentOptions, build_experiment
    from katib.spaces import OPTIMIZER_SWEEP

    r = new_result(6, "sweep_overhead", "Sweep overhead per trial (local backend) vs the trial's training time")
    s = ctx.sizes
    data = ctx.dataset(s["overhead_train_size"], s["overhead_test_size"])
    run_dir = ctx.work / "overhead"
    shutil.rmtree(run_dir, ignore_errors=True)  # fresh: a resumed trial would not be timed
    timeline = run_dir / "timeline.jsonl"
    run_dir.mkdir(parents=True)
    opts = ExperimentOptions(data_uri=str(Path(data).resolve()), output_root=str((run_dir / "outputs").resolve()),
                             epochs=int(s["overhead_epochs"]), batch_size=int(s["batch_size"]), seed=1,
                             parallel_trials=1, max_trials=int(s["overhead_trials"]),
                             command=(sys.executable, "-m", "pipelines.cli"))
    experiment = build_experiment(OPTIMIZER_SWEEP, opts)
    seen: dict[str, dict[str, float]] = {}

    def sweep_log(line: str) -> None:
        now = time.time()
        if line.startswith("[") and "] " in line:
            name, rest = line[1:].split("] ", 1)
            if rest.startswith("started: "):
                seen.setdefault(name, {})["start"] = now
            elif rest.split(" ", 1)[0] in ("Succeeded", "Failed", "EarlyStopped"):
                seen.setdefault(name, {})["end"] = now
                ctx.log("  " + line)

    ctx.log(f"overhead: {s['overhead_trials']} trial(s) through the local backend in {run_dir}")
    run_experiment(experiment, run_dir / "sweep", log=sweep_log, extra_env=hook_environment(timeline))
    procs = processes(read_events(timeline))
    trials = []
    for proc in procs.values():
        output = proc.arg("--output")
        if not output or proc.first_call("components.cnn.train.run_trial") is None:
            continue
        name = Path(output).name
        metrics_file = Path(output) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        part = trial_breakdown(proc, metrics.get("train_seconds"), end=seen.get(name, {}).get("end"))
        log_file = run_dir / "sweep" / "trials" / name / "stdout.log"
        part.update(warmup_split(epoch_seconds(log_file.read_text(errors="replace") if log_file.exists() else "")))
        if part.get("complete"):
            if name in seen and "start" in seen[name]:
                part["backend_launch_s"] = proc.start - seen[name]["start"]
            part["trial"] = name
            trials.append(part)
    imports = _import_times(ctx)
    r["settings"] = {"trials": s["overhead_trials"], "train_images": s["overhead_train_size"],
                     "epochs": s["overhead_epochs"], "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
                     "parallel_trials": 1}
    if not trials:
        r["status"] = "failed"
        r["notes"].append(f"no trial timeline recorded ({timeline})")
        return r
    keys = ["wall_s", "start_and_imports_s", "data_load_s", "model_setup_s", "fit_s", "train_s",
            "in_fit_not_training_s", "teardown_s", "overhead_s", "first_epoch_s", "steady_epoch_s", "warmup_s"]
    med = {k: stats.median([t[k] for t in trials if t.get(k) is not None]) for k in keys}
    share = med["overhead_s"] / med["train_s"]
    startup = med["start_and_imports_s"] + med["data_load_s"]
    # The seed profile's trial (54,000 images, 10 epochs): start, imports, setup, teardown and the
    # first epoch's compilation stay; the data load and the steady epochs scale with the images.
    scale = SEED_TRAIN_IMAGES / max(int(s["overhead_train_size"]) * 0.9, 1)  # 10% of them are validation
    steady = med["steady_epoch_s"] or med["train_s"] / int(s["overhead_epochs"])
    seed_train = (med["warmup_s"] or 0.0) + steady * scale * SEED_EPOCHS
    seed_overhead = med["overhead_s"] + med["data_load_s"] * (scale - 1)
    r["results"] = {"trials": trials, "median": med, "overhead_share": share, "startup_share": startup / med["train_s"],
                    "imports": imports, "seed_profile_projection": {
                        "train_s": seed_train, "overhead_s": seed_overhead, "share": seed_overhead / seed_train}}
    labels = {"start_and_imports_s": "process start + imports (exec → run_trial)",
              "data_load_s": "data load (.npy memory-map + float32 copy)",
              "model_setup_s": "model build, compile, TensorBoard setup",
              "teardown_s": "final save, metrics.json, interpreter exit",
              "overhead_s": "overhead = wall − fit",
              "train_s": "training (metrics.json train_seconds)",
              "in_fit_not_training_s": "in fit but not training (validation, checkpoints)",
              "wall_s": "trial wall time (process exec → the backend sees it end)",
              "warmup_s": "of training: first epoch's extra time (compilation)"}
    r["table"] = {"columns": ["per trial (median)", "seconds", "vs training"],
                  "rows": [[labels[k], _num(med[k], 2), _pct(None if med[k] is None else med[k] / med["train_s"])]
                           for k in ("wall_s", "start_and_imports_s", "data_load_s", "model_setup_s", "teardown_s",
                                     "overhead_s", "train_s", "warmup_s", "in_fit_not_training_s")]}
    r["headline"] = (f"{_pct(share)} of training time (start + imports + data alone: "
                     f"{_pct(startup / med['train_s'])}); projected for a seed-profile trial: "
                     f"{_pct(seed_overhead / seed_train)}")
    r["target"] = {"text": "≤ 10% of the trial's training time", "met": share <= 0.10}
    r["notes"].append("Timed inside the real trials (bench/hook/sitecustomize.py records process exec, run_trial, "
                      "load_dataset, Dataset.images and model.fit); the end is when the local backend saw the "
                      "process end. Import times per backend, fresh interpreter each (median): " +
                      "; ".join(f"{b}: {v['import_s']:.1f} s (bare interpreter {v['interpreter_s']:.2f} s)"
                                for b, v in imports.items()) + ".")
    return r


def _import_times(ctx: Context) -> dict:
    out = {}
    for backend in [b.strip() for b in str(ctx.sizes["backends"]).split(",") if b.strip()]:
        if not backend_installed(backend):
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        reps = int(ctx.sizes["import_repeats"])
        out[backend] = {"interpreter_s": stats.median([_wall("pass", env) for _ in range(reps)]),
                        "import_s": stats.median([_wall("import components.cnn.train", env) for _ in range(reps)])}
    return out


def _wall(code: str, env: dict) -> float:
    """Seconds a fresh interpreter takes to run ``code`` and exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


# ------------------------------------------------------------- 7. pipeline overhead

def item_pipeline_overhead(ctx: Context) -> dict:
    r = new_result(7, "pipeline_overhead", "Pipeline overhead: kfp.local wall time minus the steps' own work")
    s = ctx.sizes
    root = ctx.work / "pipeline"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    timeline = root / "timeline.jsonl"
    run_id = "bench"
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--profile", s["pipeline_profile"], "--runs-dir",
           str(root / "runs"), "--run-id", run_id]
    for item in s["pipeline_set"] or []:
        cmd += ["--set", item]
    env = {**os.environ, **hook_environment(timeline), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log_path = root / "pipeline.log"
    ctx.log(f"pipeline: {' '.join(cmd[1:])} (log {log_path})")
    started = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    ended = time.time()
    r["settings"] = {"profile": s["pipeline_profile"], "overrides": list(s["pipeline_set"] or []),
                     "runner": "kfp.local SubprocessRunner"}
    if proc.returncode != 0:
        r["status"] = "failed"
        r["notes"].append(f"the pipeline exited {proc.returncode}; see {log_path}")
        return r
    procs = processes(read_events(timeline))
    steps = step_processes(procs)
    total = ended - started
    work = sum(p.top_level_work() for p in steps)
    rows, step_rows = [], []
    for p in steps:
        names = sorted({c["fn"].rsplit(".", 1)[-1] for c in p.calls if c["depth"] == 0})
        component = p.arg("--function_to_execute") or "?"
        wall = p.wall
        step_rows.append({"component": component, "functions": names, "process_wall_s": wall,
                          "work_s": p.top_level_work()})
        rows.append([f"{component} ({', '.join(names) or 'no recorded call'})", _num(wall, 1),
                     _num(p.top_level_work(), 1), _num(None if wall is None else wall - p.top_level_work(), 1)])
    in_steps = sum((x["process_wall_s"] or 0) - x["work_s"] for x in step_rows)
    orchestration = total - sum(x["process_wall_s"] or 0 for x in step_rows)
    rows.append(["**whole pipeline**", _num(total, 1), _num(work, 1), _num(total - work, 1)])
    r["results"] = {"wall_s": total, "steps_work_s": work, "overhead_s": total - work,
                    "overhead_share": (total - work) / total, "in_step_processes_s": in_steps,
                    "orchestration_s": orchestration, "steps": step_rows}
    r["table"] = {"columns": ["step (its calls into components/, katib/)", "process wall s", "own work s",
                              "overhead s"], "rows": rows}
    r["headline"] = (f"{total - work:,.1f} s of {total:,.1f} s ({_pct((total - work) / total)}) is not the steps' own "
                     f"work: {in_steps:,.1f} s starting step processes and importing, {orchestration:,.1f} s kfp.local "
                     "and the driver")
    r["target"] = {"text": "(no target: measured)", "met": None}
    r["notes"].append("Own work = time inside the component's outermost calls into the step modules of "
                      "components/ and katib.sweep (prepare_dataset, run_trial, evaluate_model, run_sweep_stage, the "
                      "report functions, ...), recorded by bench/hook/sitecustomize.py in each step process; trial "
                      "processes started by a sweep step count as that step's work. Overhead in step processes = "
                      "interpreter start, kfp's executor, imports; the rest is kfp.local and the `study run` driver.")
    return r


ITEMS: dict[int, Callable[[Context], dict]] = {
    1: item_throughput, 2: item_bf16, 3: item_backends, 4: item_pipeline,
    5: item_search, 6: item_sweep_overhead, 7: item_pipeline_overhead, 8: item_install, 9: item_smoke_run,
}
