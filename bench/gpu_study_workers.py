"""The GPU study's worker processes: one trial after another (``run_task``), or whole packs (``run_pack_task``).

Workers are spawned with their environment set before Keras is imported (``worker_pool``), so
each chooses its backend and its share of the GPU's memory (``worker_environment``).
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.gpu_study_helpers import EPOCH_LINE, steady_images_per_second


def _worker_init(env: dict[str, str]) -> None:
    os.environ.update(env)  # before Keras is imported in this process


def worker_pool(workers: int, env: dict[str, str]) -> ProcessPoolExecutor:
    """``workers`` processes, each a fresh interpreter (spawned, not forked) with ``env`` set before Keras is
    imported there, so the environment chooses its backend and its share of the GPU's memory."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init,
                               initargs=(env,))


@contextlib.contextmanager
def _task_log(task: dict):
    """The task's dtype policy set and its log file as stdout; yields the function that writes a line there."""
    import keras

    keras.mixed_precision.set_global_policy(task.get("dtype_policy") or "float32")
    log_path = Path(task["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        yield lambda line: print(line, flush=True)


def _failed(out: dict, err: Exception) -> None:
    out["error"] = f"{type(err).__name__}: {err}"
    out["traceback"] = traceback.format_exc()[-2000:]


def _timed(out: dict, started: float) -> dict:
    out["end"] = time.time()
    out["wall_s"] = out["end"] - started
    return out


def run_task(task: dict) -> dict:
    """One trial (and, if asked, its test accuracy) in a worker process; never raises."""
    started = time.time()
    out = {"name": task["name"], "stage": task["stage"], "index": task["index"], "config": task["config"],
           "pid": os.getpid(), "start": started}
    try:
        import keras

        from components.cnn import train as train_module
        from components.cnn.hparams import TrialConfig

        if task.get("no_checkpoints"):  # the bench's choice, not the trial's: no per-epoch checkpoint writes
            from components.core.training import TrainingRun

            TrainingRun.checkpoint = lambda self, model: None
        keras.backend.clear_session()  # drop the previous trial's graphs and compiled functions
        with _task_log(task) as log_line:
            metrics = train_module.run_trial(TrialConfig(**task["config"]), task["data"], task["output"], log=log_line)
        epochs = [float(m.group(2)) for m in EPOCH_LINE.finditer(Path(task["log"]).read_text(errors="replace"))]
        images = round(metrics["train_images_per_second"] * metrics["train_seconds"] / max(metrics["epochs"], 1))
        out.update(objective=metrics["best"]["val_accuracy"], best_epoch=metrics["best"]["epoch"],
                   final_val_accuracy=metrics["final"].get("val_accuracy"), train_seconds=metrics["train_seconds"],
                   images_per_second=metrics["train_images_per_second"], epoch_seconds=epochs,
                   steady_images_per_second=steady_images_per_second(epochs[-metrics["epochs"]:], images),
                   backend=metrics.get("keras_backend"))
        if task.get("evaluate"):
            out["test_accuracy"] = _test_accuracy(task["output"], task["data"])
    except Exception as err:  # noqa: BLE001 - one trial failing is a row in the table
        _failed(out, err)
    return _timed(out, started)


def _test_accuracy(trial_output: str, data_uri: str) -> float:
    import keras
    import numpy as np

    from components.core.dataset import load_dataset

    data = load_dataset(data_uri)
    model = keras.models.load_model(Path(trial_output, "model.keras"))
    predicted = np.argmax(model.predict(data.images("test"), batch_size=1024, verbose=0), axis=1)
    return float((predicted == np.asarray(data.y["test"])).mean())


def nas_task(task: dict) -> dict:
    """Question 1B: the study profile's AutoKeras search (``components.nas``) in a worker; never raises.

    The search resumes on its output (KerasTuner's project); ``nas.json`` holds the result.
    """
    started = time.time()
    out = {"name": "q1b-autokeras", "pid": os.getpid(), "start": started}
    try:
        import keras

        from components.nas.config import NasConfig
        from components.nas.search import run_nas

        with _task_log(task) as log_line:
            result = run_nas(NasConfig(**task["config"]), task["data"], task["output"], log=log_line)
        best = result["best_trial"]
        out.update(config=result["config"], test_accuracy=result["test_accuracy"], params=result["params"]["total"],
                   best_val_accuracy=best["val_accuracy"], best_hyperparameters=best["hyperparameters"],
                   trials=len(result["trials"]), trial_seconds=[t.get("seconds") for t in result["trials"]],
                   backend=keras.backend.backend())
    except Exception as err:  # noqa: BLE001 - a failed search is a row in the table
        _failed(out, err)
    return _timed(out, started)


def evaluate_task(task: dict) -> dict:
    started = time.time()
    try:
        return {"name": task["name"], "test_accuracy": _test_accuracy(task["output"], task["data"]),
                "wall_s": time.time() - started}
    except Exception as err:  # noqa: BLE001
        return {"name": task["name"], "error": f"{type(err).__name__}: {err}", "wall_s": time.time() - started}


def worker_environment(parallel: int, cache: str | None = None) -> dict[str, str]:
    """The workers' environment: backend, log level, and under JAX each one's share of the GPU's memory and,
    with ``cache``, JAX's persistent compilation cache there (JAX reads ``JAX_COMPILATION_CACHE_DIR``): a
    program one worker compiled, another, or the same run resumed, reads back instead of compiling it again."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    if env["KERAS_BACKEND"] == "jax":
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION",
                                                               f"{0.9 / max(parallel, 1):.3f}")
        if cache:
            env["JAX_COMPILATION_CACHE_DIR"] = cache
    return env




# ------------------------------------------------------------------ packed mode

_DEVICE_DATA: dict[str, object] = {}  # the dataset on the device, once per worker


def run_pack_task(pack: dict) -> list[dict]:
    """One pack (``components.cnn.packed``): its members trained in one JAX program; one row per member.

    Each member still writes its own trial files (metrics lines, records, checkpoints when asked,
    ``model.keras``); its log in ``logs/`` gets its metrics lines and the pack's progress lines.
    The row's ``wall_s`` is the pack's wall time: the members ran side by side, not one after another.
    """
    started = time.time()
    tasks = pack["tasks"]
    rows = [{"name": t["name"], "stage": t["stage"], "index": t["index"], "config": t["config"],
             "pid": os.getpid(), "start": started, "pack_size": len(tasks)} for t in tasks]
    try:
        import keras

        from components.cnn.hparams import TrialConfig
        from components.cnn.packed.executor import load_device_data, run_pack
        from components.cnn.packed.members import Member

        keras.mixed_precision.set_global_policy(pack.get("dtype_policy") or "float32")
        if pack["data"] not in _DEVICE_DATA:
            _DEVICE_DATA[pack["data"]] = load_device_data(pack["data"])
        logs = {t["name"]: Path(t["log"]) for t in tasks}
        for path in logs.values():
            path.parent.mkdir(parents=True, exist_ok=True)

        def write(name: str | None, line: str) -> None:
            for path in [logs[name]] if name else logs.values():
                with open(path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")

        members = [Member(t["name"], TrialConfig(**t["config"]), t["output"]) for t in tasks]
        results = run_pack(members, _DEVICE_DATA[pack["data"]], checkpoints=not pack.get("no_checkpoints"),
                           on_line=write, log=lambda line: write(None, line), lowering=pack.get("lowering") or "auto",
                           epoch_loop=pack.get("epoch_loop") or "auto", slots=pack.get("slots"),
                           tail=pack.get("tail") or "shrink", pad_layers=pack.get("pad_layers") or ())
        for row, task, result in zip(rows, tasks, results):
            if result.status == "failed":
                row["error"] = result.error
                continue
            m = result.metrics
            row.update(objective=m["best"]["val_accuracy"], best_epoch=m["best"]["epoch"],
                       final_val_accuracy=m["final"].get("val_accuracy"), train_seconds=m["train_seconds"],
                       images_per_second=m["train_images_per_second"], epoch_seconds=m["pack"]["epoch_seconds"],
                       steady_images_per_second=m["steady_images_per_second"], backend=m.get("keras_backend"),
                       pack_sizes=m["pack"]["sizes"], status=result.status)
            if task.get("evaluate"):
                row["test_accuracy"] = _test_accuracy(task["output"], task["data"])
    except Exception as err:  # noqa: BLE001 - a failed pack is rows in the table
        for row in rows:
            row.setdefault("error", f"{type(err).__name__}: {err}")
            row["traceback"] = traceback.format_exc()[-2000:]
    ended = time.time()
    for row in rows:
        row.update(end=ended, wall_s=ended - started)
    return rows
