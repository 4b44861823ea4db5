"""The whole study on one GPU: Question 1A's study-profile trial and Question 2's three chained sweeps.

Run by ``bench/gpu_study.sh`` (which sets up the Python environment); directly::

    KERAS_BACKEND=jax python -m bench.gpu_study --data DIR_WITH_IDX_FILES --parallel 12
    KERAS_BACKEND=jax python -m bench.gpu_study --data DIR --slice          # A whole, a fixed sample of B and C

Trials are packed on the GPU: ``--parallel N`` worker processes each run trials
one after another with the project's own trial code (``components.cnn.train.run_trial``:
the same model, settings, metrics and outputs as ``study train``), so imports and
data loading are paid once per worker, not once per trial. JAX workers each
preallocate ``0.9 / N`` of the GPU's memory (``XLA_PYTHON_CLIENT_MEM_FRACTION``).

With ``--packed`` (JAX only) trials that share a shape and optimizer train in one
JAX program (``components.cnn.packed``: sweep B's 81 activation combinations can share
one, sweep A is one pack per optimizer, sweep C one per shape), still each with its own
trial files; the packs are spread over the ``--parallel`` workers, a stage with fewer
packs than workers split further (sweep B on 4 workers: 4 packs of about 20). With
``--pad-filters 3,4`` sweep C's 81 shapes are 9 programs of 9, conv3 and conv4 padded to
the pack's largest count (1.22 times C's own FLOPs; ``components/cnn/packed/padding.py``)::

    KERAS_BACKEND=jax python -m bench.gpu_study --data DIR --packed --parallel 4 --no-checkpoints

Modules: ``gpu_study_helpers`` (pure, tested), ``gpu_study_workers`` (the worker
processes), ``gpu_study_extras`` (the machine checks before the study, Question 1B after it),
``gpu_study_report`` (``study.md``).

Stage B starts when A's winner is known, C when B's is (the study's chain); the
Question 1A trial runs beside stage A. Results: ``study.json`` and ``study.md`` in
``--out`` (wall time per stage, images/s per trial, the accuracy table, and in
slice mode the full study's projected time). A trial whose output already has
``metrics.json`` is not run again (run the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from bench.gpu_study_extras import check_finite, finite_refusal, measure_gemm, run_q1b
from bench.gpu_study_helpers import (  # noqa: F401 - re-exported: the tests and older callers use them here
    ACCURACY_TOLERANCE_PP,
    STAGE_LABELS,
    STAGES,
    makespan,
    pad_layers_arg,
    project_stage,
    sample_indices,
    steady_images_per_second,
    winner,
    write_atomic,
)
from bench.gpu_study_report import render_markdown
from bench.gpu_study_workers import evaluate_task, run_pack_task, run_task, worker_environment, worker_pool
from bench.machine import machine_info
from components.core.errors import UserError

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

    def submit(self, pool: ProcessPoolExecutor, tasks: list[dict]) -> dict[Future, str]:
        """One future per trial, or with ``--packed`` one per pack (``components.cnn.packed``)."""
        if not self.args.packed:
            return {pool.submit(run_task, t): t["name"] for t in tasks}
        packs = self.packs(tasks)
        self.log(f"  {len(tasks)} trials in {len(packs)} packs: {[len(p) for p in packs]}")
        if self.args.pad_filters:  # what these packs' programs run, a pack key split over workers included
            from bench.flops import packed_flops_ratio
            from components.cnn.hparams import TrialConfig

            waste = packed_flops_ratio([[TrialConfig(**t["config"]) for t in p] for p in packs], self.args.pad_filters)
            self.results.setdefault("padding_waste", {})[tasks[0]["stage"]] = waste
            self.log(f"  conv layers {','.join(map(str, self.args.pad_filters))} padded: {waste:.3g} times the "
                     "trials' own FLOPs")
        return {pool.submit(run_pack_task, {"tasks": pack, "data": self.data,
                                            "no_checkpoints": self.args.no_checkpoints,
                                            "dtype_policy": self.args.dtype_policy,
                                            "lowering": self.args.pack_lowering,
                                            "epoch_loop": self.args.epoch_loop,
                                            "slots": self.args.pack_slots,
                                            "tail": self.args.pack_tail,
                                            "pad_layers": self.args.pad_filters}): pack[0]["name"]
                for pack in packs}

    def packs(self, tasks: list[dict]) -> list[list[dict]]:
        """The stage's tasks as packs: one per shape and optimizer, split so that every worker has one
        where the trials allow (``group_members``' spread), each at most ``--pack-size`` trials; the
        packs with the most training FLOPs first, so that no large one starts last (sweep C's shapes)."""
        from bench.flops import study_cnn_forward_flops, training_flops
        from components.cnn.hparams import TrialConfig
        from components.cnn.packed.members import Member, group_members, program_filters

        by_name = {t["name"]: t for t in tasks}
        pad = self.args.pad_filters
        packs = group_members([Member(t["name"], TrialConfig(**t["config"]), t["output"]) for t in tasks],
                              self.args.pack_size, spread=self.args.parallel, pad_layers=pad)

        def work(pack: list[Member]) -> float:  # what the pack's program runs: padded filters where padded
            flops = training_flops(study_cnn_forward_flops(program_filters([m.config for m in pack], pad)))
            return sum(m.config.epochs * flops for m in pack)

        return [[by_name[m.name] for m in pack] for pack in sorted(packs, key=work, reverse=True)]

    def record(self, r: dict, done_results: list[dict]) -> None:
        done_results.append(r)
        self.results["trials"].append(r)
        if "error" in r:
            self.log(f"  {r['name']}: FAILED {r['error']}")
        else:
            self.log(f"  {r['name']}: val_accuracy {r['objective']:.4f}, {r['wall_s']:.0f} s, "
                     f"{(r.get('steady_images_per_second') or 0):,.0f} images/s")

    def run_stage(self, pool: ProcessPoolExecutor, stage: str, tasks: list[dict],
                  extra: dict[Future, str] | None = None) -> list[dict]:
        started = time.time()
        self.log(f"stage {STAGE_LABELS[stage]}: {len(tasks)} trials on {self.args.parallel} workers")
        pending = self.submit(pool, tasks)
        done_results = []
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                result = future.result()
                for r in result if isinstance(result, list) else [result]:
                    self.record(r, done_results)
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
            "mode": args.mode or ("slice" if args.slice else "full"), "packed": args.packed,
            "pack_size": args.pack_size, "pack_slots": args.pack_slots, "pack_tail": args.pack_tail,
            "pack_lowering": args.pack_lowering, "pad_filters": list(args.pad_filters),
            "parallel": args.parallel, "epoch_loop": args.epoch_loop, "epochs": self.epochs,
            "sample": args.sample if args.slice else None, "backend": os.environ.get("KERAS_BACKEND"),
            "dtype_policy": args.dtype_policy, "matmul_precision": args.matmul_precision,
            "checkpoints": not args.no_checkpoints,
            "stages": args.stages, "q1a": not args.no_q1a, "chain": args.chain,
            # gpu_study.sh --mps exports the daemon's pipe folder to the workers once it answers.
            "mps": bool(os.environ.get("CUDA_MPS_PIPE_DIRECTORY")),
        }
        self.results["machine"] = machine_info()
        cache = None if args.compile_cache == "none" else str(Path(args.compile_cache or self.out / "jax-cache"))
        if cache:  # whether this run starts warm: its first epochs then compile less than a first run's
            Path(cache).mkdir(parents=True, exist_ok=True)
            self.results["settings"]["compile_cache"] = {"dir": cache, "entries_at_start": len(os.listdir(cache))}
        env = worker_environment(args.parallel, cache)
        if args.matmul_precision:  # JAX reads its config from the environment (TF32 or full fp32 on a GPU)
            env["JAX_DEFAULT_MATMUL_PRECISION"] = args.matmul_precision
        self.results["worker_env"] = env
        finite = check_finite(args, env, self.out / "logs", self.log)
        if finite is not None:
            self.results["finite"] = finite
            if not finite["finite"]:
                self.save()
                raise UserError(finite_refusal(args.dtype_policy, finite, self.results["machine"]))
        if not args.no_gemm:
            self.results["gemm"] = measure_gemm(args.gemm_n, self.out / "logs", self.log)
        # The checks above measure the machine, not the study: its wall time starts here, with the data.
        study_started = time.time()
        self.results["checks_s"] = study_started - self.t0
        self.prepare_data()
        with worker_pool(args.parallel, env) as pool:
            q1a = None
            if not args.no_q1a:
                settings = {**start_settings(), "optimizer": self.profile["train"]["optimizer"]}
                task = self.task("q1a", "q1a-seed-cnn", 0, self.trial_config(settings, train=True), evaluate=True)
                q1a = next(iter(self.submit(pool, [task])))
            fixed = start_settings()
            evaluations = {}
            for stage in STAGES:
                if stage not in args.stages:
                    continue
                results = self.run_stage(pool, stage, self.stage_tasks(stage, fixed))
                best = winner(results)
                handed_on = SWEEPS[stage].settings(SWEEPS[stage].assignments_from(best["config"]))
                if args.chain == "study":  # the next sweep starts from the study's winner, whatever won here
                    handed_on = SWEEPS[stage].study_settings() or handed_on
                fixed.update(handed_on)
                if not args.no_eval:
                    output = str(self.out / "trials" / stage / best["name"])
                    evaluations[stage] = pool.submit(evaluate_task, {"name": best["name"], "data": self.data,
                                                                     "output": output})
            if q1a is not None:
                r = q1a.result()
                r = r[0] if isinstance(r, list) else r
                self.results["trials"].append(r)
                self.results["q1a"] = r
                accuracy = r.get("test_accuracy", float("nan"))
                self.log(f"Q1A: {r.get('error') or f'test accuracy {accuracy:.4f}'}")
            for stage, future in evaluations.items():
                self.results["evaluations"][stage] = future.result()
        self.results["wall_s"] = time.time() - study_started
        self.results["throughput"] = self.throughput()
        self.save()
        if args.q1b:  # after the study's wall time: the search is not part of the 180 s target
            self.results["q1b"] = run_q1b(self.profile["nas"], args, env, self.data, self.out, self.log)
        if args.slice and not args.packed:  # a pack's wall is not a trial's: the list-scheduling model does not apply
            self.results["projection"] = self.projection()
        self.save()
        return self.results

    def throughput(self) -> dict:
        """Training images and FLOPs of every trial that ran, over the whole run's wall time."""
        from bench.flops import study_cnn_forward_flops, training_flops

        n_train = int(self.results["data_counts"]["train"])
        images = flop = 0
        for r in self.results["trials"]:
            if r.get("objective") is None:
                continue
            epochs = len(r.get("epoch_seconds") or []) or r["config"]["epochs"]
            images += epochs * n_train
            flop += epochs * n_train * training_flops(study_cnn_forward_flops(r["config"]["filters"]))
        wall = max(self.results.get("wall_s", 0.0), 1e-9)
        return {"images": images, "wall_s": wall, "images_per_second": images / wall, "pflop": flop / 1e15,
                "tflops": flop / wall / 1e12}

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
    p.add_argument("--q1b", action="store_true",
                   help="after the study, Question 1B: the study profile's AutoKeras ResNet search (needs autokeras; "
                        "its wall time is its own, outside the study's)")
    p.add_argument("--q1b-trials", type=int, default=None, help="Q1B's max_trials (default: the study profile's, 3)")
    p.add_argument("--q1b-epochs", type=int, default=None, help="Q1B's epochs per trial (default: the profile's, 10)")
    p.add_argument("--chain", default="own", choices=("own", "study"),
                   help="what sweeps B and C start from: this run's winners (own, the study's chain), or the "
                        "study's published winners (study: Nadam, then activations 67), so that two runs "
                        "train the same trials and bench.gpu_compare pairs every one of them")
    p.add_argument("--no-eval", action="store_true", help="skip the winners' test accuracy")
    p.add_argument("--no-checkpoints", action="store_true",
                   help="skip the trial's per-epoch checkpoint (faster; a killed trial then restarts from epoch 1)")
    p.add_argument("--dtype-policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    p.add_argument("--matmul-precision", default=None,
                   choices=("highest", "float32", "high", "tensorfloat32", "default", "bfloat16"),
                   help="JAX backend: jax_default_matmul_precision for fp32 convolutions and matmuls "
                        "(tensorfloat32 or default: TF32 on an Ampere or newer GPU; highest: full fp32); "
                        "default: JAX's own")
    p.add_argument("--packed", action="store_true",
                   help="train trials that share a shape and optimizer in one JAX program (components.cnn.packed); "
                        "the packs are spread over the --parallel workers")
    p.add_argument("--pack-size", type=int, default=None, help="packed mode: at most this many trials per pack")
    p.add_argument("--pack-slots", type=int, default=None,
                   help="packed mode: each pack trains at most this many trials at once; "
                        "a row that frees (a trial finished or stopped early) takes the next waiting trial, so the "
                        "program keeps its size (instead of --pack-size's packs waiting for a free worker)")
    p.add_argument("--pad-filters", default=(), type=pad_layers_arg, metavar="LAYERS",
                   help="packed mode: conv layers (e.g. 3,4) whose filter counts may differ inside a pack, padded to "
                        "its largest (sweep C: 9 programs of 9 instead of 81 of 1; components/cnn/packed/padding.py)")
    p.add_argument("--pack-tail", default="shrink", choices=("shrink", "pad"),
                   help="packed mode: what a row freed with no trial waiting becomes: dropped (each smaller pack "
                        "compiles again), or kept as an idle row so the pack's size is its live trials rounded up "
                        "to a power of two (one compile per halving; components/cnn/packed/executor.py)")
    p.add_argument("--pack-lowering", default="auto", choices=("auto", "vmap", "unroll"),
                   help="packed mode: members batched by vmap (grouped convolutions) or unrolled in one program "
                        "(plain ones); auto: vmap on a GPU, unroll on the CPU (components/cnn/packed/program.py)")
    p.add_argument("--epoch-loop", default="auto", choices=("auto", "scan", "host"),
                   help="packed mode: an epoch as one lax.scan on the device, or a host loop of one dispatch "
                        "per step; auto: scan on a GPU, host on the CPU")
    p.add_argument("--compile-cache", default=None,
                   help="JAX's persistent compilation cache for the workers (default: OUT/jax-cache, so the same "
                        "command resumed compiles nothing it compiled before, and on a GPU the workers share XLA's "
                        "autotuning results there; 'none': off)")
    p.add_argument("--no-gemm", action="store_true",
                   help="skip measuring the chip's fp32, TF32 and bf16 GEMM rates (the report's ceilings)")
    p.add_argument("--gemm-n", type=int, default=None,
                   help="the measured GEMM's size n (default 8192 on a GPU, 2048 on the CPU)")
    p.add_argument("--mode", default=None, help="the run's label in study.json (default: full, or slice)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = [s for s in args.stages if s not in STAGES]
    if bad or args.parallel < 1 or args.sample < 1:
        print(f"error: --stages takes {', '.join(STAGES)}; --parallel and --sample must be ≥ 1", file=sys.stderr)
        return 2
    args.out = args.out or f"runs/gpu-study-{time.strftime('%Y%m%d-%H%M%S')}"
    study = Study(args)
    try:
        results = study.run()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    q1b = f"; Q1B after it {results['q1b']['wall_s']:,.0f} s" if "q1b" in results else ""
    study.log(f"done in {results['wall_s']:,.0f} s (the study; the machine checks before it "
              f"{results.get('checks_s', 0):,.0f} s{q1b}): {study.out / 'study.md'}")
    if "projection" in results:
        study.log(f"projected full study: {results['projection']['total_s']:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
