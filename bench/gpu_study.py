"""The whole study on one GPU: Question 1A's study-profile trial and Question 2's three chained sweeps.

Run by ``bench/gpu_study.sh`` (which sets up the Python environment); directly::

    KERAS_BACKEND=jax python -m bench.gpu_study --data DIR_WITH_IDX_FILES --parallel 12
    KERAS_BACKEND=jax python -m bench.gpu_study --data DIR --slice          # A whole, a fixed sample of B and C

Trials are packed on the GPU: ``--parallel N`` worker processes each run trials
one after another with the project's own trial code (``components.cnn.train.run_trial``:
the same model, settings, metrics and outputs as ``study train``), so imports and
data loading are paid once per worker, not once per trial. JAX workers each
preallocate ``0.9 / N`` of the GPU's memory (``XLA_PYTHON_CLIENT_MEM_FRACTION``).

Stage B starts when A's winner is known, C when B's is (the study's chain); the
Question 1A trial runs beside stage A. Results: ``study.json`` and ``study.md`` in
``--out`` (wall time per stage, images/s per trial, the accuracy table, and in
slice mode the full study's projected time). A trial whose output already has
``metrics.json`` is not run again (run the same command to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import re
import statistics
import sys
import tempfile
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from bench.machine import machine_info
from bench.report import md_table

STAGES = ("optimizer", "activations", "filters")
STAGE_LABELS = {"optimizer": "A: optimizers", "activations": "B: activations", "filters": "C: filters"}
ACCURACY_TOLERANCE_PP = 0.3
EPOCH_LINE = re.compile(r"trial: epoch (\d+)/\d+ trained in ([0-9.]+) s")


# ------------------------------------------------------------------ pure helpers (tested)

def sample_indices(grid_size: int, k: int, include: tuple[int, ...] = ()) -> list[int]:
    """A fixed sample of ``k`` grid points: evenly spaced, plus the ``include`` ones (the study's winners)."""
    if k >= grid_size:
        return list(range(grid_size))
    chosen = set(include)
    spaced = max(k - len(chosen), 1)
    step = grid_size / spaced
    chosen.update(min(grid_size - 1, int(i * step + step / 2)) for i in range(spaced))
    return sorted(chosen)


def makespan(durations: list[float], slots: int) -> float:
    """Wall time of running ``durations`` in this order on ``slots`` workers (each takes the next when free)."""
    free = [0.0] * max(slots, 1)
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def project_stage(sample_durations: list[float], grid_size: int, slots: int, measured_wall: float) -> dict:
    """A whole stage's wall time from a sample's per-trial times (cycled to the grid size).

    The list-scheduling estimate is calibrated by how the sample itself ran:
    ``measured_wall / makespan(sample)`` (scheduling gaps, the last trials' tail).
    """
    if not sample_durations:
        return {"projected_s": None}
    full = [sample_durations[i % len(sample_durations)] for i in range(grid_size)]
    sample_span = makespan(sample_durations, slots)
    factor = measured_wall / sample_span if sample_span > 0 else 1.0
    return {"projected_s": makespan(full, slots) * factor, "calibration": factor,
            "mean_trial_s": statistics.mean(sample_durations)}


def steady_images_per_second(epoch_seconds: list[float], images: int) -> float | None:
    """Images/s of the epochs after the first (which includes compilation)."""
    steady = epoch_seconds[1:] or epoch_seconds
    return images / statistics.median(steady) if steady else None


def winner(results: list[dict]) -> dict | None:
    """Katib's choice: the highest objective (max val_accuracy over epochs); ties go to the lower grid index."""
    done = [r for r in results if r.get("objective") is not None]
    return max(done, key=lambda r: (r["objective"], -r["index"])) if done else None


def write_atomic(path: Path, text: str) -> None:
    """Not katib.backends.local.files' twin: importing katib.backends.local imports Optuna, which GPU images lack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the worker's side

def _worker_init(env: dict[str, str]) -> None:
    os.environ.update(env)  # before Keras is imported in this process


def run_task(task: dict) -> dict:
    """One trial (and, if asked, its test accuracy) in a worker process; never raises."""
    started = time.time()
    out = {"name": task["name"], "stage": task["stage"], "index": task["index"], "config": task["config"],
           "pid": os.getpid(), "start": started}
    try:
        import keras

        from components.cnn import train as train_module
        from components.cnn.hparams import TrialConfig

        if task.get("no_checkpoints"):
            train_module._save_checkpoint = lambda *args, **kwargs: None  # the bench's choice, not the trial's
        keras.backend.clear_session()  # drop the previous trial's graphs and compiled functions
        keras.mixed_precision.set_global_policy(task.get("dtype_policy") or "float32")
        log_path = Path(task["log"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            def log_line(line: str) -> None:
                print(line, flush=True)

            metrics = train_module.run_trial(TrialConfig(**task["config"]), task["data"], task["output"], log=log_line)
        epochs = [float(m.group(2)) for m in EPOCH_LINE.finditer(log_path.read_text(errors="replace"))]
        images = round(metrics["train_images_per_second"] * metrics["train_seconds"] / max(metrics["epochs"], 1))
        out.update(objective=metrics["best"]["val_accuracy"], best_epoch=metrics["best"]["epoch"],
                   final_val_accuracy=metrics["final"].get("val_accuracy"), train_seconds=metrics["train_seconds"],
                   images_per_second=metrics["train_images_per_second"], epoch_seconds=epochs,
                   steady_images_per_second=steady_images_per_second(epochs[-metrics["epochs"]:], images),
                   backend=metrics.get("keras_backend"))
        if task.get("evaluate"):
            out["test_accuracy"] = _test_accuracy(task["output"], task["data"])
    except Exception as err:  # noqa: BLE001 - one trial failing is a row in the table
        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback"] = traceback.format_exc()[-2000:]
    out["end"] = time.time()
    out["wall_s"] = out["end"] - started
    return out


def _test_accuracy(trial_output: str, data_uri: str) -> float:
    import keras
    import numpy as np

    from components.core.dataset import load_dataset

    data = load_dataset(data_uri)
    model = keras.models.load_model(Path(trial_output, "model.keras"))
    predicted = np.argmax(model.predict(data.images("test"), batch_size=1024, verbose=0), axis=1)
    return float((predicted == np.asarray(data.y["test"])).mean())


def evaluate_task(task: dict) -> dict:
    started = time.time()
    try:
        return {"name": task["name"], "test_accuracy": _test_accuracy(task["output"], task["data"]),
                "wall_s": time.time() - started}
    except Exception as err:  # noqa: BLE001
        return {"name": task["name"], "error": f"{type(err).__name__}: {err}", "wall_s": time.time() - started}


# ------------------------------------------------------------------ the driver

class Study:
    def __init__(self, args: argparse.Namespace):
        from components.profile_check import load_profile

        self.args = args
        self.out = Path(args.out).resolve()
        self.profile = load_profile("study")
        self.sweep_settings = self.profile["sweeps"]
        self.epochs = args.epochs or int(self.sweep_settings["epochs"])
        self.results: dict = {"trials": [], "stages": {}, "evaluations": {}}
        self.t0 = time.time()

    def log(self, line: str) -> None:
        print(f"[gpu-study {time.time() - self.t0:7.1f} s] {line}", flush=True)

    # ---- tasks
    def trial_config(self, settings: dict[str, str], train: bool = False) -> dict:
        section = self.profile["train"] if train else self.sweep_settings
        return {"optimizer": settings["optimizer"], "learning_rate": section.get("learning_rate"),
                "activations": tuple(settings["activations"].split(",")),
                "filters": tuple(int(f) for f in settings["filters"].split(",")),
                "epochs": self.epochs if not train else (self.args.epochs or int(section["epochs"])),
                "batch_size": int(section["batch_size"]), "seed": int(section["seed"])}

    def task(self, stage: str, name: str, index: int, config: dict, evaluate: bool = False) -> dict:
        return {"stage": stage, "name": name, "index": index, "config": config, "data": self.data,
                "output": str(self.out / "trials" / stage / name), "log": str(self.out / "logs" / f"{name}.log"),
                "evaluate": evaluate, "no_checkpoints": self.args.no_checkpoints,
                "dtype_policy": self.args.dtype_policy}

    def stage_tasks(self, stage: str, fixed: dict[str, str]) -> list[dict]:
        from components.sweeps import SWEEPS

        sweep = SWEEPS[stage]
        indices = list(range(sweep.grid_size))
        if self.args.slice and stage != "optimizer":
            indices = sample_indices(sweep.grid_size, self.args.sample, include=(sweep.study.index,))
        tasks = []
        for i in indices:
            combo = sweep.combination_at(i)
            assignments = {p.name: v for p, v in zip(sweep.parameters, combo)}
            settings = {**fixed, **sweep.settings(assignments)}
            tasks.append(self.task(stage, f"{stage}-{i:02d}", i, self.trial_config(settings)))
        return tasks

    # ---- running
    def prepare_data(self) -> None:
        from components.core.dataset import METADATA
        from components.data import DataSettings, prepare_dataset

        d = self.profile["data"]
        train_size = self.args.train_size if self.args.train_size is not None else d["train_size"]
        test_size = self.args.test_size if self.args.test_size is not None else d["test_size"]
        path = self.out / "data"
        started = time.time()
        if not (path / METADATA).exists():
            meta = prepare_dataset(DataSettings(source=self.args.data, val_fraction=float(d["val_fraction"]),
                                                train_size=train_size or None, test_size=test_size or None,
                                                seed=int(d["seed"])), str(path))
            self.log(f"data: {meta['counts']} from {meta['source']}")
        self.data = str(path)
        self.results["data_s"] = time.time() - started
        self.results["data_counts"] = json.loads((path / METADATA).read_text())["counts"]

    def run_stage(self, pool: ProcessPoolExecutor, stage: str, tasks: list[dict],
                  extra: dict[Future, str] | None = None) -> list[dict]:
        started = time.time()
        self.log(f"stage {STAGE_LABELS[stage]}: {len(tasks)} trials on {self.args.parallel} workers")
        pending = {pool.submit(run_task, t): t["name"] for t in tasks}
        done_results = []
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                r = future.result()
                done_results.append(r)
                self.results["trials"].append(r)
                if "error" in r:
                    self.log(f"  {r['name']}: FAILED {r['error']}")
                else:
                    self.log(f"  {r['name']}: val_accuracy {r['objective']:.4f}, {r['wall_s']:.0f} s, "
                             f"{(r.get('steady_images_per_second') or 0):,.0f} images/s")
        wall = time.time() - started
        best = winner(done_results)
        self.results["stages"][stage] = {"trials": len(tasks), "wall_s": wall, "start": started,
                                         "failed": sum("error" in r for r in done_results),
                                         "winner": best and {k: best[k] for k in ("name", "index", "config",
                                                                                  "objective")},
                                         "trial_walls": [r["wall_s"] for r in sorted(done_results,
                                                                                      key=lambda r: r["index"])]}
        self.save()
        if best is None:
            raise SystemExit(f"stage {stage}: no trial finished; logs in {self.out / 'logs'}")
        return done_results

    def run(self) -> dict:
        from components.sweeps import SWEEPS, start_settings

        args = self.args
        self.results["settings"] = {
            "mode": "slice" if args.slice else "full", "parallel": args.parallel, "epochs": self.epochs,
            "sample": args.sample if args.slice else None, "backend": os.environ.get("KERAS_BACKEND"),
            "dtype_policy": args.dtype_policy, "checkpoints": not args.no_checkpoints,
            "stages": args.stages, "q1a": not args.no_q1a,
            # gpu_study.sh --mps exports the daemon's pipe folder to the workers once it answers.
            "mps": bool(os.environ.get("CUDA_MPS_PIPE_DIRECTORY")),
        }
        self.results["machine"] = machine_info()
        self.prepare_data()
        env = worker_environment(args.parallel)
        self.results["worker_env"] = env
        ctx = get_context("spawn")  # a fresh interpreter per worker: the backend is chosen by its env
        with ProcessPoolExecutor(max_workers=args.parallel, mp_context=ctx, initializer=_worker_init,
                                 initargs=(env,)) as pool:
            q1a = None
            if not args.no_q1a:
                settings = {**start_settings(), "optimizer": self.profile["train"]["optimizer"]}
                q1a = pool.submit(run_task, self.task("q1a", "q1a-seed-cnn", 0,
                                                      self.trial_config(settings, train=True), evaluate=True))
            fixed = start_settings()
            evaluations = {}
            for stage in STAGES:
                if stage not in args.stages:
                    continue
                results = self.run_stage(pool, stage, self.stage_tasks(stage, fixed))
                best = winner(results)
                fixed.update(SWEEPS[stage].settings(SWEEPS[stage].assignments_from(best["config"])))
                if not args.no_eval:
                    output = str(self.out / "trials" / stage / best["name"])
                    evaluations[stage] = pool.submit(evaluate_task, {"name": best["name"], "data": self.data,
                                                                     "output": output})
            if q1a is not None:
                r = q1a.result()
                self.results["trials"].append(r)
                self.results["q1a"] = r
                accuracy = r.get("test_accuracy", float("nan"))
                self.log(f"Q1A: {r.get('error') or f'test accuracy {accuracy:.4f}'}")
            for stage, future in evaluations.items():
                self.results["evaluations"][stage] = future.result()
        self.results["wall_s"] = time.time() - self.t0
        if args.slice:
            self.results["projection"] = self.projection()
        self.save()
        return self.results

    def projection(self) -> dict:
        """The full study's wall time from this slice's measured per-trial times."""
        from components.sweeps import SWEEPS

        stages = self.results["stages"]
        measured_stages = sum(s["wall_s"] for s in stages.values())
        other = self.results["wall_s"] - measured_stages
        per_stage = {}
        total = other
        for stage, s in stages.items():
            grid = SWEEPS[stage].grid_size
            if s["trials"] >= grid:
                per_stage[stage] = {"projected_s": s["wall_s"], "measured": True}
            else:
                per_stage[stage] = project_stage(s["trial_walls"], grid, self.args.parallel, s["wall_s"])
            total += per_stage[stage]["projected_s"] or 0.0
        return {"other_s": other, "stages": per_stage, "total_s": total, "target_s": 15 * 60,
                "within_target": total <= 15 * 60}

    # ---- output
    def save(self) -> None:
        write_atomic(self.out / "study.json", json.dumps(self.results, indent=2, default=str) + "\n")
        write_atomic(self.out / "study.md", render_markdown(self.results))


def worker_environment(parallel: int) -> dict[str, str]:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    if env["KERAS_BACKEND"] == "jax":
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION",
                                                               f"{0.9 / max(parallel, 1):.3f}")
    return env


def render_markdown(res: dict) -> str:
    from components.core.settings import STUDY_RESULTS
    from components.sweeps import SWEEPS

    s = res.get("settings", {})
    m = res.get("machine", {})
    sharing = {True: "through MPS", False: "by time slices (no MPS)"}.get(s.get("mps"), "(MPS not recorded)")
    out = ["# The study on one GPU", "",
           f"- mode: **{s.get('mode')}**, {s.get('parallel')} trials at once, {s.get('epochs')} epochs, backend "
           f"{s.get('backend')}, dtype policy {s.get('dtype_policy')}, "
           f"checkpoints {'on' if s.get('checkpoints') else 'off'}, "
           f"GPU shared {sharing}",
           f"- machine: {', '.join(m.get('gpus') or []) or 'no GPU'}; CPU {m.get('cpu', {}).get('model')} × "
           f"{m.get('cores')}; Python {m.get('python')}; "
           + ", ".join(f"{k} {v}" for k, v in sorted((m.get("libraries") or {}).items())),
           f"- data: {res.get('data_counts')} (prepared in {res.get('data_s', 0):.0f} s)",
           f"- **wall time: {res.get('wall_s', 0):,.0f} s** ({res.get('wall_s', 0) / 60:.1f} min)", ""]
    out += ["## Stages", ""]
    rows = []
    for stage, st in res.get("stages", {}).items():
        walls = st["trial_walls"]
        rows.append([STAGE_LABELS[stage], st["trials"], st["failed"], f"{st['wall_s']:,.0f}",
                     f"{statistics.mean(walls):,.1f}" if walls else "–",
                     (st.get("winner") or {}).get("name", "–")])
    out += [md_table(["stage", "trials", "failed", "wall s", "mean trial s", "winner"], rows), ""]
    out += ["## Accuracy", ""]
    acc_rows = []
    q1a = res.get("q1a")
    if q1a:
        ta = q1a.get("test_accuracy")
        study = STUDY_RESULTS["study_cnn"]["test_accuracy"]
        acc_rows.append(["Q1A seed CNN (test accuracy)", "Adam, relu×4, 32,32,64,64",
                         f"{100 * ta:.2f}%" if ta is not None else q1a.get("error", "–"), "–",
                         f"{100 * study:.2f}%", f"{100 * (ta - study):+.2f}" if ta is not None else "–", "–"])
    for stage, st in res.get("stages", {}).items():
        w = st.get("winner")
        study = SWEEPS[stage].study
        ev = res.get("evaluations", {}).get(stage, {})
        if not w:
            continue
        delta = 100 * (w["objective"] - study.accuracy)
        setting = {"optimizer": w["config"]["optimizer"], "activations": ",".join(w["config"]["activations"]),
                   "filters": ",".join(map(str, w["config"]["filters"]))}[stage]
        acc_rows.append([f"{STAGE_LABELS[stage]} (best val_accuracy)", f"{setting} (index {w['index']})",
                         f"{100 * w['objective']:.2f}%",
                         f"{100 * ev['test_accuracy']:.2f}%" if "test_accuracy" in ev else "–",
                         f"{100 * study.accuracy:.2f}%", f"{delta:+.2f}",
                         "yes" if abs(delta) <= ACCURACY_TOLERANCE_PP else "**no**"])
    out += [md_table(["what", "winner", "ours", "winner's test accuracy", "study", "Δ pp", "within 0.3 pp"],
                     acc_rows), ""]
    proj = res.get("projection")
    if proj:
        out += ["## Projection of the full study (from this slice)", ""]
        prow = [[STAGE_LABELS[k], "measured" if v.get("measured") else
                 f"{v.get('mean_trial_s', 0):.1f} s/trial × grid, calibration {v.get('calibration', 1):.2f}",
                 f"{(v.get('projected_s') or 0):,.0f}"] for k, v in proj["stages"].items()]
        prow.append(["data, worker start, evaluations", "measured", f"{proj['other_s']:,.0f}"])
        prow.append(["**total**", "", f"**{proj['total_s']:,.0f}** ({proj['total_s'] / 60:.1f} min; target ≤ 15 min: "
                     f"{'met' if proj['within_target'] else 'not met'})"])
        out += [md_table(["part", "how", "seconds"], prow), ""]
    out += ["## Trials", ""]
    trows = []
    for r in sorted(res.get("trials", []), key=lambda r: (r["stage"], r["index"])):
        c = r["config"]
        trows.append([r["name"], c["optimizer"], ",".join(c["activations"]), ",".join(map(str, c["filters"])),
                      f"{100 * r['objective']:.2f}%" if r.get("objective") is not None else r.get("error", "–"),
                      f"{r['wall_s']:.1f}", f"{r.get('train_seconds', 0):.1f}",
                      f"{r['steady_images_per_second']:,.0f}" if r.get("steady_images_per_second") else "–",
                      r.get("pid", "")])
    out += [md_table(["trial", "optimizer", "activations", "filters", "best val_accuracy", "wall s", "train s",
                      "images/s (after epoch 1)", "worker"], trows), ""]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu_study", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with the four Fashion-MNIST IDX files (.gz or raw); "
                                                "default: the data step's usual sources")
    p.add_argument("--out", default=None, help="results folder (default: runs/gpu-study-<time>)")
    p.add_argument("--parallel", type=int, default=int(os.environ.get("GPU_STUDY_PARALLEL", 12)),
                   help="trials on the GPU at once (default 12, as measured on an H200)")
    p.add_argument("--slice", action="store_true", help="sweep A whole, a fixed sample of B and C; projects the "
                                                        "full study's time")
    p.add_argument("--sample", type=int, default=12, help="slice mode: trials of B and of C (default 12)")
    p.add_argument("--epochs", type=int, default=None, help="default: the study profile's (10)")
    p.add_argument("--train-size", type=int, default=None, help="default: the study profile's (all 60,000)")
    p.add_argument("--test-size", type=int, default=None, help="default: the study profile's (all 10,000)")
    p.add_argument("--stages", default=",".join(STAGES), type=lambda t: [s for s in t.split(",") if s],
                   help="which sweeps (default optimizer,activations,filters)")
    p.add_argument("--no-q1a", action="store_true", help="skip Question 1A's trial")
    p.add_argument("--no-eval", action="store_true", help="skip the winners' test accuracy")
    p.add_argument("--no-checkpoints", action="store_true",
                   help="skip the trial's per-epoch checkpoint (faster; a killed trial then restarts from epoch 1)")
    p.add_argument("--dtype-policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = [s for s in args.stages if s not in STAGES]
    if bad or args.parallel < 1 or args.sample < 1:
        print(f"error: --stages takes {', '.join(STAGES)}; --parallel and --sample must be ≥ 1", file=sys.stderr)
        return 2
    args.out = args.out or f"runs/gpu-study-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Study(args)
    results = study.run()
    study.log(f"done in {results['wall_s']:,.0f} s: {study.out / 'study.md'}")
    if "projection" in results:
        study.log(f"projected full study: {results['projection']['total_s']:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
