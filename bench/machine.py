"""What machine a result was measured on: CPU model, cores, memory, GPUs, library versions."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata

# Distributions whose versions a result depends on (read from metadata: nothing is imported).
LIBRARIES = ("numpy", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "optuna", "kfp",
             "tensorboard", "ml_dtypes")
# CPU flags that decide which kernels fp32/bf16 training can use.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def cpu_info(cpuinfo_text: str | None = None) -> dict:
    """CPU model (with family/model numbers, since VMs often report only a brand), flags of interest."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo_text = f.read()
        except OSError:
            cpuinfo_text = ""
    first = cpuinfo_text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "flags": [f for f in CPU_FLAGS if f in flags],
    }


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def gpus() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them (empty without one)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def library_versions(names=LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_commit(repo: str | os.PathLike | None = None) -> str | None:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it (None outside git)."""
    repo = repo or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=20, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--"], timeout=20,
                               check=False).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def machine_info() -> dict:
    cpu = cpu_info()
    return {
        "commit": source_commit(),
        "cpu": cpu,
        "cores": usable_cores(),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "keras_backend_default": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }


def machine_slug(info: dict) -> str:
    """A file-name part that says what ran it: ``amd-epyc-2c`` or ``nvidia-h100-80gb-hbm3``."""
    name = info["gpus"][0].split(",")[0] if info.get("gpus") else f"{info['cpu']['model']}-{info['cores']}c"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "machine"
