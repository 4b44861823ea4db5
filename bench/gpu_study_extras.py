"""What the GPU study runs beside its trials: the machine checks before them, Question 1B after them.

* :func:`check_finite` — the study's CNN under the run's dtype policy infers finite outputs
  (``bench.probe``'s ``finite``). JAX 0.12.1's CPU backend computes NaN in the CNN's compiled bf16
  inference: every trial would train, then score chance accuracy on NaN predictions.
* :func:`measure_gemm` — the chip's measured ceilings in fp32, TF32 and bf16 (``bench.gpu_peaks``).
* :func:`run_q1b` — the study profile's AutoKeras search in one worker with the device to itself.

Each probe runs in a fresh process (``bench.probe.run_probe``) before any worker holds the device.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from bench.gpu_study_workers import nas_task, worker_pool


def check_finite(args: argparse.Namespace, env: dict[str, str], logs: Path,
                 log: Callable[[str], None]) -> dict | None:
    """The ``finite`` probe's result under the run's settings and the workers' environment; None where the
    probe could not run at all (only logged: the trials will say what is wrong)."""
    from bench.probe import ProbeFailed, run_probe

    spec = {"kind": "finite", "dtype_policy": args.dtype_policy, "packed": args.packed,
            "lowering": args.pack_lowering, "epoch_loop": args.epoch_loop}
    try:
        result = run_probe(spec, env=env, timeout=600, log_path=logs / "finite.log")
    except (ProbeFailed, OSError) as e:
        log(f"finite: not checked ({e})")
        return None
    if result["finite"]:
        log(f"finite: the study's CNN under {result['dtype_policy']} infers finite outputs")
    return result


def finite_refusal(dtype_policy: str, result: dict, machine: dict) -> str:
    """The one line that refuses a run whose dtype policy the backend miscomputes."""
    version = (machine.get("libraries") or {}).get(result["backend"], "")
    return (f"--dtype-policy {dtype_policy}: the study's CNN computes non-finite outputs on this backend "
            f"({result['backend']} {version}; non-finite values: {result['nonfinite']}), so every trial would "
            f"score chance accuracy; choose another dtype policy or backend version")


def measure_gemm(n: int | None, logs: Path, log: Callable[[str], None]) -> dict:
    """The chip's measured ceilings (``bench.gpu_peaks``), or ``{"error": ...}``."""
    from bench.probe import ProbeFailed, run_probe

    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        return {"error": "measured through JAX only"}
    try:
        result = run_probe({"kind": "gemm_rates", "n": n}, timeout=600, env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
                           log_path=logs / "gemm.log")
    except (ProbeFailed, OSError) as e:
        log(f"gemm: not measured ({e})")
        return {"error": str(e)}
    log("gemm: " + ", ".join(f"{p} {r['tflops']:,.1f} TFLOP/s" if "tflops" in r else f"{p} {r['error']}"
                             for p, r in result["rates"].items()) + f" (n = {result['n']})")
    return result


def run_q1b(nas_settings: dict, args: argparse.Namespace, env: dict[str, str], data: str, out: Path,
            log: Callable[[str], None]) -> dict:
    """Question 1B, the profile's AutoKeras ResNet search (``--q1b-trials``/``--q1b-epochs`` shrink it)."""
    from components.nas.config import NasConfig

    nas = dict(nas_settings)
    if args.q1b_trials:
        nas["max_trials"] = args.q1b_trials
    if args.q1b_epochs:
        nas["epochs"] = args.q1b_epochs
    config = NasConfig(**nas).normalized().as_dict()
    log(f"Q1B: AutoKeras {config['block_type']} search, {config['max_trials']} trials × {config['epochs']} epochs, "
        f"batch {config['batch_size']}")
    with worker_pool(1, {**env, "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.9"}) as pool:
        r = pool.submit(nas_task, {"config": config, "data": data, "output": str(out / "q1b"),
                                   "log": str(out / "logs" / "q1b-autokeras.log"),
                                   "dtype_policy": args.dtype_policy}).result()
    log("Q1B: " + (r.get("error") or f"test accuracy {r['test_accuracy']:.4f}, {r['params']:,} parameters, "
                                     f"{r['wall_s']:,.0f} s"))
    return r
