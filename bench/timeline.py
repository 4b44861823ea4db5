"""Reading the timeline that ``bench/hook/sitecustomize.py`` writes (items 6 and 7).

One JSON object per line: ``start`` and ``exit`` per process, ``call`` per
recorded function call (``fn``, ``t0``, ``t1``, ``depth``, ``inherited``).
Times are seconds since the epoch, so lines from different processes compare.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent / "hook"


def hook_environment(timeline: Path) -> dict[str, str]:
    """Environment that makes every Python process started with it record into ``timeline``."""
    path = os.pathsep.join(p for p in (str(HOOK_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "BENCH_TIMELINE": str(timeline), "BENCH_TIMELINE_DEPTH": "0"}


@dataclass
class Process:
    pid: int
    start: float | None = None  # the kernel's exec time when known, else the interpreter's start
    exit: float | None = None
    argv: list[str] = field(default_factory=list)
    inherited: int = 0
    calls: list[dict] = field(default_factory=list)

    @property
    def wall(self) -> float | None:
        return None if self.start is None or self.exit is None else self.exit - self.start

    def first_call(self, fn: str) -> dict | None:
        return next((c for c in sorted(self.calls, key=lambda c: c["t0"]) if c["fn"] == fn), None)

    def top_level_work(self) -> float:
        """Seconds in this process's outermost recorded calls."""
        return sum(c["t1"] - c["t0"] for c in self.calls if c["depth"] == 0)

    def arg(self, flag: str) -> str | None:
        if flag in self.argv[:-1]:
            return self.argv[self.argv.index(flag) + 1]
        return None


def read_events(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a killed process
    return events


def processes(events: list[dict]) -> dict[int, Process]:
    procs: dict[int, Process] = {}
    for e in events:
        proc = procs.setdefault(e["pid"], Process(pid=e["pid"]))
        if e["event"] == "start":
            proc.start = e.get("exec_t") or e["t"]
            proc.argv = list(e.get("argv") or [])
            proc.inherited = int(e.get("inherited") or 0)
        elif e["event"] == "exit":
            proc.exit = e["t"]
        elif e["event"] == "call":
            proc.calls.append(e)
    return procs


KFP_EXECUTOR_FLAG = "--executor_input"


def step_processes(procs: dict[int, Process]) -> list[Process]:
    """The pipeline's step processes (kfp's executor), not the trials a sweep step starts."""
    return sorted((p for p in procs.values() if p.inherited == 0 and KFP_EXECUTOR_FLAG in p.argv),
                  key=lambda p: p.start or 0.0)


def trial_breakdown(proc: Process, train_seconds: float | None, end: float | None = None) -> dict:
    """Where one trial process's wall time went (seconds); ``end``: when its parent saw it end."""
    run = proc.first_call("components.cnn.train.run_trial")
    fit = proc.first_call("keras.Model.fit")
    end = end if end is not None else proc.exit
    if proc.start is None or run is None or fit is None or end is None:
        return {"complete": False}
    data = sum(c["t1"] - c["t0"] for c in proc.calls
               if c["fn"] in ("components.core.dataset.load_dataset", "components.core.dataset.Dataset.images"))
    fit_s = fit["t1"] - fit["t0"]
    parts = {
        "complete": True,
        "wall_s": end - proc.start,
        "start_and_imports_s": run["t0"] - proc.start,
        "data_load_s": data,
        "model_setup_s": fit["t0"] - run["t0"] - data,
        "fit_s": fit_s,
        "train_s": train_seconds,
        "in_fit_not_training_s": None if train_seconds is None else fit_s - train_seconds,
        "teardown_s": end - fit["t1"],
    }
    parts["overhead_s"] = parts["wall_s"] - fit_s
    return parts


EPOCH_LINE = re.compile(r"trial: epoch (\d+)/\d+ trained in ([0-9.]+) s")


def epoch_seconds(log_text: str) -> list[float]:
    """Training seconds per epoch from a trial's log (``trial: epoch 2/3 trained in 8.1 s``)."""
    return [float(m.group(2)) for m in EPOCH_LINE.finditer(log_text)]


def warmup_split(epochs: list[float]) -> dict:
    """First epoch (with compilation) vs the steady epochs after it."""
    if len(epochs) < 2:
        return {"first_epoch_s": epochs[0] if epochs else None, "steady_epoch_s": None, "warmup_s": None}
    steady = sorted(epochs[1:])[len(epochs[1:]) // 2]
    return {"first_epoch_s": epochs[0], "steady_epoch_s": steady, "warmup_s": max(0.0, epochs[0] - steady)}
