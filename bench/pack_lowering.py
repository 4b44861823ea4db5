"""A pack's layout (components/cnn/packed/program.py: LOWERINGS, EPOCH_LOOPS), each measured in one run.

    KERAS_BACKEND=jax python -m bench.pack_lowering [--members 4] [--images 1024] [--out FILE.json]

Trains one epoch of a pack of sweep B's kind (one shape, an activation per member) on random
images, once to compile and once timed, for each layout in turn, in one process; prints and
writes images per second of the pack and per member, beside one member trained alone and the
machine's fp32 GEMM rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.gpu_study_helpers import write_atomic
from bench.machine import machine_info
from bench.probe import gemm_probe

ACTIVATION_SETS = [("relu",) * 4, ("elu", "selu", "relu", "relu"), ("selu", "relu", "elu", "relu"),
                   ("elu", "elu", "selu", "relu")]


def epoch_rate(members: int, images: int, lowering: str, epoch_loop: str, batch_size: int = 128) -> dict:
    import jax.numpy as jnp

    from components.cnn.hparams import TrialConfig
    from components.cnn.packed.program import PackProgram

    configs = [TrialConfig(activations=ACTIVATION_SETS[i % len(ACTIVATION_SETS)], batch_size=batch_size, seed=1)
               for i in range(members)]
    program = PackProgram(configs, (28, 28, 1), 10, lowering, epoch_loop)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((images, 28, 28, 1), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, images))
    orders = np.stack([rng.permutation(images) for _ in range(members)])
    state = program.stack([program.initial_variables(c) for c in configs], configs)
    seconds = []
    for _ in range(2):  # the first epoch compiles
        started = time.perf_counter()
        state, loss, _ = program.train_epoch(state, x, y, orders)
        np.asarray(loss)
        seconds.append(time.perf_counter() - started)
    rate = members * images / seconds[1]
    return {"lowering": program.lowering, "epoch_loop": program.epoch_loop, "members": members, "images": images,
            "batch_size": batch_size,
            "first_epoch_s": round(seconds[0], 2), "epoch_s": round(seconds[1], 2),
            "images_per_second": round(rate, 1), "per_member": round(rate / members, 1)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--images", type=int, default=1024, help="training images per member per epoch")
    p.add_argument("--layouts", default="unroll:host,vmap:host,unroll:scan,vmap:scan",
                   type=lambda t: [tuple(item.split(":")) for item in t.split(",")],
                   help="LOWERING:EPOCH_LOOP pairs to measure, comma-separated")
    p.add_argument("--out", default=None, help="write the record here as JSON")
    args = p.parse_args(argv)
    from components.cnn.packed.program import require_jax_backend

    require_jax_backend()
    record = {"machine": machine_info(),
              "gemm_gflops": round(gemm_probe({"n": 2048, "repeats": 5})["flops_per_second"] / 1e9, 1), "runs": []}
    # Written after each layout, so a run stopped by a time limit keeps the layouts it measured.
    for members, lowering, loop in [(1, "unroll", "host")] + [(args.members, lo, el) for lo, el in args.layouts]:
        record["runs"].append(epoch_rate(members, args.images, lowering, loop))
        print(json.dumps(record["runs"][-1]), flush=True)
        if args.out:
            write_atomic(Path(args.out), json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
