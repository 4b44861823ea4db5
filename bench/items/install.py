"""Item 8: how long `make install` takes on a fresh clone, cold and warm.

Cold: an empty package cache (a new UV_CACHE_DIR, pip's cache off), no find-links folder and no
pip configuration, as on a user's first run. Warm: `make install` again with nothing changed
(what every later `make run` / `make test` pays), and a rebuild of the deleted `.venv` from the
warm cache (what `make clean` costs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.items.common import Context, new_result
from bench.probe import REPO

COLD_TARGET_S, WARM_TARGET_S = 180.0, 10.0


def clean_install_environment(cache: Path) -> dict:
    """This process's environment with every pip and uv setting that could point at local files removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", UV_CACHE_DIR=str(cache))
    env.pop("VIRTUAL_ENV", None)
    return env


def fresh_clone(target: Path) -> Path:
    """The committed tree of this checkout (plus uncommitted changes to tracked files) in ``target``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def timed_make_install(clone: Path, env: dict, log_path: Path) -> float:
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        subprocess.run(["make", "install"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True, timeout=1800)
    return time.perf_counter() - started


def measure_install(work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="install-") as scratch:
        root = Path(scratch)
        clone = fresh_clone(root / "clone")
        env = clean_install_environment(root / "uv-cache")
        log_path = work / "install.log"
        cold = timed_make_install(clone, env, log_path)
        warm = timed_make_install(clone, env, log_path)
        shutil.rmtree(clone / ".venv")
        rebuild = timed_make_install(clone, env, log_path)
        venv_python = clone / ".venv" / "bin" / "python"
        python = subprocess.run([str(venv_python), "-c", "import platform; print(platform.python_version())"],
                                capture_output=True, text=True, check=True).stdout.strip()
        uv = subprocess.run([str(clone / ".venv" / "bin" / "uv"), "--version"], capture_output=True, text=True,
                            check=True).stdout.strip()
        torch_absent = subprocess.run([str(venv_python), "-c", "import torch"], capture_output=True).returncode != 0
        cache_mb = sum(f.stat().st_size for f in (root / "uv-cache").rglob("*") if f.is_file()) / 2**20
    return {"cold_seconds": round(cold, 1), "warm_seconds": round(warm, 2),
            "rebuild_warm_cache_seconds": round(rebuild, 1), "python": python,
            "tool": f"{uv} (bootstrapped into .venv by pip), scripts/install.sh via make install",
            "torch_installed": not torch_absent, "uv_cache_mb": round(cache_mb)}


def item_install(ctx: Context) -> dict:
    r = new_result(8, "install", "Set-up time: make install on a fresh clone, cold and warm")
    install = measure_install(ctx.work / "install")
    r["settings"] = {"command": "make install", "cold": "empty UV_CACHE_DIR, PIP_NO_CACHE_DIR=1, no PIP_* / UV_* "
                     "settings, PIP_CONFIG_FILE=/dev/null", "warm": "make install again, nothing changed"}
    r["results"] = {"install": install}
    met = install["cold_seconds"] <= COLD_TARGET_S and install["warm_seconds"] <= WARM_TARGET_S
    r["headline"] = (f"cold {install['cold_seconds']:.0f} s, warm {install['warm_seconds']:.2f} s, rebuild from the "
                     f"warm cache {install['rebuild_warm_cache_seconds']:.0f} s (Python {install['python']}, "
                     f"{install['tool'].split(' (')[0]})")
    r["target"] = {"text": f"cold ≤ {COLD_TARGET_S:.0f} s, warm ≤ {WARM_TARGET_S:.0f} s", "met": met}
    r["table"] = {"columns": ["case", "seconds"],
                  "rows": [["cold (empty cache)", install["cold_seconds"]], ["warm (nothing changed)",
                           install["warm_seconds"]], ["rebuild .venv, warm cache",
                           install["rebuild_warm_cache_seconds"]]]}
    r["notes"].append(f"The cold install downloaded into a uv cache of {install['uv_cache_mb']:,} MB (unpacked); "
                      f"PyTorch installed: {install['torch_installed']}. Download speed depends on the network to "
                      "the package index, so the cold figure is this machine's, not a property of the lock.")
    return r
