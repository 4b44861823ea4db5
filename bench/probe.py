"""One measurement in a fresh process: ``python -m bench.probe '<json spec>'``.

A Keras backend, a thread setting or a dtype policy is fixed for the life of a
process, so every measurement that depends on one runs here, started by
:func:`run_probe` with the environment it needs. The probe prints its result as
one ``BENCH_RESULT {json}`` line.

Kinds:

* ``gemm`` — the rate of an n×n matrix multiply through the backend (the ceiling).
* ``gemm_rates`` — the same through JAX in each of fp32, TF32 and bf16 (``bench.gpu_peaks``): the
  GPU study's measured ceilings; a precision the device lacks (TF32 on a CPU) is recorded as such.
* ``finite`` — the study's CNN under a dtype policy: one training step, then inference on
  random images (Keras' own, and with ``packed`` a one-member pack's): whether every output is
  finite. JAX 0.12.1's CPU backend computes NaN in the CNN's compiled bf16 inference (from its
  first max pooling on), which a run would otherwise find as chance accuracy in every trial.
* ``train`` — the hand-written CNN built and compiled as ``components.cnn.train`` does,
  trained with ``model.fit`` on the .npy artifact; epoch times with the first
  (compile) epoch left out; optionally the input-pipeline split and test accuracy.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "
REPO = Path(__file__).resolve().parents[1]


class ProbeFailed(RuntimeError):
    pass


# ------------------------------------------------------------------ the parent's side

def run_probe(spec: dict, env: dict[str, str] | None = None, timeout: float = 3600,
              log_path: Path | None = None) -> dict:
    """Run one probe in a fresh interpreter (cwd: the repo) and return its result dict."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.probe", json.dumps(spec)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - started
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"$ probe {json.dumps(spec)} env={json.dumps(env or {})}\n{proc.stdout}{proc.stderr}\n")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["process_wall_s"] = wall
            return result
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    raise ProbeFailed(f"probe {spec.get('kind')} (backend {spec.get('backend')}) exited {proc.returncode}: {tail}")


# ------------------------------------------------------------------ the probe's side

def _sync(x) -> None:
    """Wait for an asynchronously dispatched result (JAX, GPU) by fetching one element."""
    import keras

    keras.ops.convert_to_numpy(keras.ops.reshape(x, (-1,))[:1])


def _sorted_seconds(run, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``run`` (each waits for its result), shortest first."""
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    return sorted(seconds)


def gemm_probe(spec: dict) -> dict:
    import keras
    import numpy as np

    n, dtype, repeats = int(spec["n"]), spec.get("dtype", "float32"), int(spec.get("repeats", 5))
    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32), dtype=dtype)
    b = keras.ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32), dtype=dtype)
    for _ in range(2):  # warm-up: kernel selection, compilation, page faults
        _sync(keras.ops.matmul(a, b))
    seconds = _sorted_seconds(lambda: _sync(keras.ops.matmul(a, b)), repeats)
    median = seconds[len(seconds) // 2]
    return {"n": n, "dtype": dtype, "seconds": seconds, "flops": 2 * n**3,
            "flops_per_second": 2 * n**3 / median}


def finite_probe(spec: dict) -> dict:
    import keras
    import numpy as np

    from components.cnn.models import build_study_cnn

    keras.mixed_precision.set_global_policy(spec.get("dtype_policy") or "float32")
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model = build_study_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:128], y[:128], batch_size=128, epochs=1, verbose=0)
    outputs = {"keras": np.asarray(model.predict(x, batch_size=128, verbose=0), dtype=np.float32)}
    if spec.get("packed"):
        import jax.numpy as jnp

        from components.cnn.hparams import TrialConfig
        from components.cnn.packed.program import PackProgram

        config = TrialConfig(batch_size=128, seed=1)
        program = PackProgram([config], (28, 28, 1), 10, spec.get("lowering") or "auto",
                              spec.get("epoch_loop") or "auto")
        state = program.stack([program.initial_variables(config)], [config])
        loss, _ = program.evaluate(state, jnp.asarray(x), jnp.asarray(y))
        outputs["packed"] = np.asarray(loss, dtype=np.float32)
    nonfinite = {k: int((~np.isfinite(v)).sum()) for k, v in outputs.items()}
    return {"dtype_policy": keras.mixed_precision.global_policy().name, "backend": keras.backend.backend(),
            "nonfinite": nonfinite, "finite": not any(nonfinite.values())}


def gemm_rates_probe(spec: dict) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    on_gpu = jax.default_backend() == "gpu"
    n = int(spec.get("n") or (8192 if on_gpu else 2048))
    repeats = int(spec.get("repeats", 10))
    presets = {"float32": ("F32_F32_F32", jnp.float32), "tensorfloat32": ("TF32_TF32_F32", jnp.float32),
               "bfloat16": ("BF16_BF16_F32", jnp.bfloat16)}
    rng = np.random.default_rng(0)
    host = rng.standard_normal((2, n, n), dtype=np.float32)
    rates = {}
    for name, (preset, dtype) in presets.items():
        algorithm = getattr(jax.lax.DotAlgorithmPreset, preset)
        a, b = (jnp.asarray(m, dtype=dtype) for m in host)
        matmul = jax.jit(lambda x, y, algorithm=algorithm: jnp.matmul(x, y, precision=algorithm))
        try:
            for _ in range(2):  # compile, then warm
                matmul(a, b).block_until_ready()
        except Exception as e:  # noqa: BLE001 - the backend refuses the precision (TF32 on a CPU)
            rates[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}
            continue
        seconds = _sorted_seconds(lambda f=matmul, x=a, y=b: f(x, y).block_until_ready(), repeats)
        rates[name] = {"seconds": seconds, "tflops": 2 * n**3 / seconds[len(seconds) // 2] / 1e12}
    return {"n": n, "device": str(jax.devices()[0]), "backend": jax.default_backend(), "rates": rates}


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # float() waits for the step results, so an asynchronous backend's epoch is really over.
            {k: float(v) for k, v in (logs or {}).items()}
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def _median(values):
    return statistics.median(values) if values else None


def _data_pass_seconds(x, y, batch_size: int) -> float:
    """One pass over the training data through the backend's own fit input path, no training."""
    import keras
    from keras.src.trainers.data_adapters import get_data_adapter

    adapter = get_data_adapter(x, y, batch_size=batch_size, shuffle=True)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        iterator = adapter.get_tf_dataset()
    elif backend == "jax":
        iterator = adapter.get_jax_iterator()
    elif backend == "torch":
        iterator = adapter.get_torch_dataloader()
    else:
        iterator = adapter.get_numpy_iterator()
    t0 = time.perf_counter()
    for batch in iterator:
        _ = batch
    return time.perf_counter() - t0


def train_probe(spec: dict) -> dict:
    import keras
    import numpy as np

    from bench.flops import model_forward_flops
    from components.cnn.models import build_study_cnn, param_counts
    from components.cnn.train import make_optimizer
    from components.core.dataset import load_dataset

    if spec.get("torch_threads"):
        import torch

        torch.set_num_threads(int(spec["torch_threads"]))
    policy = spec.get("dtype_policy") or "float32"
    keras.mixed_precision.set_global_policy(policy)
    seed, batch_size, epochs = int(spec.get("seed", 1)), int(spec.get("batch_size", 128)), int(spec["epochs"])
    keras.utils.set_random_seed(seed)

    data = load_dataset(spec["data"])
    x, y = data.images("train"), np.asarray(data.y["train"])
    if spec.get("train_images"):
        x, y = x[: int(spec["train_images"])], y[: int(spec["train_images"])]
    activations = tuple(spec.get("activations") or ("relu",) * 4)
    filters = tuple(spec.get("filters") or (32, 32, 64, 64))
    model = build_study_cnn(activations, filters, input_shape=x.shape[1:],
                            num_classes=int(data.metadata["num_classes"]))
    compile_args = {"steps_per_execution": int(spec.get("steps_per_execution", 1))}
    if spec.get("jit_compile", "auto") != "auto":
        compile_args["jit_compile"] = bool(spec["jit_compile"])
    # As components.cnn.train compiles it (the trial's settings), plus the knobs under test.
    model.compile(optimizer=make_optimizer(spec.get("optimizer", "Adam"), None),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], **compile_args)
    timer = _epoch_timer()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    measured = timer.seconds[1:] or timer.seconds
    steps = -(-len(x) // batch_size)
    result = {
        "backend": keras.backend.backend(),
        "dtype_policy": policy,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": compile_args["steps_per_execution"],
        "batch_size": batch_size,
        "train_images": int(len(x)),
        "epochs": epochs,
        "epoch_seconds": timer.seconds,
        "warmup_epoch_seconds": timer.seconds[0],
        "images_per_second": len(x) / _median(measured),
        "images_per_second_each": [len(x) / s for s in measured],
        "forward_flops_per_image": model_forward_flops(model),
        "params": param_counts(model)["total"],
    }
    if spec.get("pipeline"):
        result["pipeline"] = _pipeline_split(model, x, y, batch_size, _median(measured) / steps,
                                             int(spec.get("pipeline_repeats", 10)))
    if spec.get("evaluate"):
        x_test, y_test = data.images("test"), np.asarray(data.y["test"])
        predicted = np.argmax(model.predict(x_test, batch_size=512, verbose=0), axis=1)
        correct = predicted == y_test
        result["test_accuracy"] = float(correct.mean())
        result["test_images"] = int(len(y_test))
        result["test_correct_bits"] = base64.b64encode(np.packbits(correct).tobytes()).decode()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _pipeline_split(model, x, y, batch_size: int, fit_step_s: float, repeats: int) -> dict:
    """Per step: fit's time, the time of the same step on a batch already in memory, the data path alone."""
    import keras

    xb = keras.ops.convert_to_tensor(x[:batch_size])
    yb = keras.ops.convert_to_tensor(y[:batch_size])
    for _ in range(3):
        model.train_on_batch(xb, yb)
    compute = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.train_on_batch(xb, yb)  # returns numpy logs: the step has finished
        compute.append(time.perf_counter() - t0)
    steps = -(-len(x) // batch_size)
    try:
        _data_pass_seconds(x, y, batch_size)  # warm-up
        data_step = _median([_data_pass_seconds(x, y, batch_size) for _ in range(3)]) / steps
    except (ImportError, AttributeError) as err:  # a Keras without this private seam
        data_step = None
        print(f"probe: data path not measured ({err})", file=sys.stderr)
    compute_step = _median(compute)
    return {
        "fit_step_s": fit_step_s,
        "compute_step_s": compute_step,
        "data_step_s": data_step,
        "wait_share": max(0.0, (fit_step_s - compute_step) / fit_step_s),
        "wait_share_raw": (fit_step_s - compute_step) / fit_step_s,
        "data_share": None if data_step is None else data_step / fit_step_s,
    }


PROBES = {"gemm": gemm_probe, "gemm_rates": gemm_rates_probe, "finite": finite_probe, "train": train_probe}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0] if argv else sys.stdin.read())
    result = PROBES[spec["kind"]](spec)
    result["kind"] = spec["kind"]
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
