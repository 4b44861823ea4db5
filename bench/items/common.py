"""What every item shares: the run's :class:`Context`, the result's shape, and how tables write numbers."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.probe import run_probe

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


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
        from components.core.dataset import METADATA
        from components.data import DataSettings, prepare_dataset

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

    def gemm(self, backend: str, dtype: str = "float32", again: bool = False) -> dict:
        """The GEMM probe's result, measured once per run (``again``: measured anew, e.g. after a long item)."""
        key = (backend, dtype)
        if again or key not in self.cache:
            self.cache[key] = self.probe({"kind": "gemm", "n": self.sizes["gemm_n"], "dtype": dtype,
                                          "repeats": self.sizes["gemm_repeats"]}, backend=backend)
        return self.cache[key]


def new_result(number: int, name: str, title: str) -> dict:
    return {"id": number, "name": name, "title": title, "status": "ok", "settings": {}, "results": {},
            "headline": "", "target": {"text": "", "met": None}, "table": {"columns": [], "rows": []},
            "notes": [], "files": {}, "seconds": None}


def backend_installed(backend: str) -> bool:
    return importlib.util.find_spec(BACKEND_MODULES.get(backend, backend)) is not None


def size_list(value) -> list[str]:
    """A size given as comma-separated names (``"baseline,threads"``), stripped, empty ones dropped."""
    return [part.strip() for part in str(value).split(",") if part.strip()]


def as_percent(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def as_number(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"
