"""The bench's timeline hook, loaded at interpreter start when ``bench/hook`` is on PYTHONPATH.

With ``BENCH_TIMELINE=FILE`` set, every Python process of a run (the pipeline's
steps, the sweeps' trials) appends JSON lines to FILE: its start (the kernel's
exec time) and exit, and each call of the study's step functions with its start
and end. That is how the bench tells a step's or a trial's own work from the
process start, imports and orchestration around it, without touching the
project's code. Without ``BENCH_TIMELINE`` nothing is recorded or changed.

What counts as a step's work: a call of any public function of a step module
(every ``components.*`` module but the plumbing in :data:`NOT_STEPS`, and
``katib.sweep``), so a new step is covered without listing it here. Only a
process's outermost such call (``depth`` 0) is recorded, plus the calls named in
:data:`ALWAYS` at any depth (the parts of a trial). ``inherited`` > 0 marks a
process started from inside a recorded call (a trial run by a sweep step).
"""

from __future__ import annotations

import os
import sys

STEP_PACKAGES = ("components.",)
STEP_MODULES = ("katib.sweep",)
# Adapters and helpers a step calls into, not a step's work themselves.
NOT_STEPS = {"pipelines.cli", "components.core.errors", "components.core.settings", "components.core.profiles",
             "components.cnn.hparams", "components.core.storage", "components.core.tblog", "components.cnn.models",
             "components.transfer.models"}
# Recorded at any depth: the parts of a trial (items 6 and 7 read them).
ALWAYS = {"components.core.dataset": ("load_dataset", "Dataset.images"), "components.cnn.train": ("run_trial",)}
DEPTH_ENV = "BENCH_TIMELINE_DEPTH"


def is_step_module(name: str) -> bool:
    return (name.startswith(STEP_PACKAGES) or name in STEP_MODULES) and name not in NOT_STEPS


def _exec_time() -> float | None:
    """When the kernel started this process (seconds since the epoch), from /proc."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _install(path: str) -> None:
    import atexit
    import functools
    import importlib.abc
    import json
    import time

    inherited = int(os.environ.get(DEPTH_ENV, "0") or 0)
    state = {"depth": 0}

    def emit(record: dict) -> None:
        record.update(pid=os.getpid(), ppid=os.getppid())
        line = (json.dumps(record, default=str) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write on O_APPEND: lines from many processes do not interleave
        finally:
            os.close(fd)

    def timed(name: str, fn, always: bool):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth = state["depth"]
            state["depth"] += 1
            if depth == 0:
                os.environ[DEPTH_ENV] = str(inherited + 1)  # children started from here are nested
            t0, ok = time.time(), False
            try:
                result = fn(*args, **kwargs)
                ok = True
                return result
            finally:
                t1 = time.time()
                state["depth"] -= 1
                if depth == 0:
                    os.environ[DEPTH_ENV] = str(inherited)
                if depth == 0 or always:
                    emit({"event": "call", "fn": name, "t0": t0, "t1": t1, "depth": depth,
                          "inherited": inherited, "ok": ok})
        return wrapper

    def patch(module) -> None:
        import inspect

        name = module.__name__
        always = ALWAYS.get(name, ())
        if is_step_module(name):
            for attr, fn in list(vars(module).items()):
                # Plain functions defined here (not imported, not lru_cache objects), public or always-timed.
                if inspect.isfunction(fn) and fn.__module__ == name and (not attr.startswith("_") or attr in always):
                    setattr(module, attr, timed(f"{name}.{attr}", fn, attr in always))
        for dotted in (d for d in always if "." in d):
            cls, attr = dotted.split(".", 1)
            owner = getattr(module, cls, None)
            if owner is not None and inspect.isfunction(getattr(owner, attr, None)):
                setattr(owner, attr, timed(f"{name}.{dotted}", getattr(owner, attr), True))
        if name == "components.cnn.train":  # Keras is loaded now: time model.fit too
            keras = sys.modules.get("keras")
            if keras is not None and not getattr(keras.Model.fit, "_bench_timed", False):
                keras.Model.fit = timed("keras.Model.fit", keras.Model.fit, True)
                keras.Model.fit._bench_timed = True

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, import_path, target=None):
            if not (is_step_module(name) or name in ALWAYS):
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, import_path, target)
                if spec is not None and spec.loader is not None:
                    original = spec.loader.exec_module

                    def exec_module(module, _original=original):
                        _original(module)
                        patch(module)

                    spec.loader.exec_module = exec_module
                    return spec
            return None

    sys.meta_path.insert(0, Finder())
    emit({"event": "start", "t": time.time(), "exec_t": _exec_time(), "argv": sys.argv,
          "inherited": inherited})
    atexit.register(lambda: emit({"event": "exit", "t": time.time()}))


def _chain() -> None:
    """Run the sitecustomize this file shadows, if the interpreter has one."""
    import importlib

    here = os.path.dirname(os.path.abspath(__file__))
    saved_path, saved_module = list(sys.path), sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved_path
        if saved_module is not None:
            sys.modules["sitecustomize"] = saved_module


if os.environ.get("BENCH_TIMELINE"):
    _install(os.environ["BENCH_TIMELINE"])
_chain()
