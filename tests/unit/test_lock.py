"""The lock installs from PyPI alone on every supported Python and platform.

uv.lock is the one source of truth (a universal lock: `make lock`); requirements.lock is its
export for pip and the container images. For each CPython 3.10-3.13 on Linux x86_64, Linux
aarch64 and macOS arm64, the packages the lock selects by its markers must each have a wheel
for that interpreter and platform in uv.lock (or be a known pure-Python sdist), with one
TensorFlow distribution, the platform's own, and no PyTorch.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# (sys_platform, platform_machine, wheel platform tags of the oldest machine we promise to run on):
# glibc 2.28 (Debian 10, RHEL 8, Ubuntu 20.04 has 2.31) and macOS 14 on Apple silicon.
GLIBC = [f"manylinux_2_{minor}_{{arch}}" for minor in range(28, 4, -1)] + [
    "manylinux2014_{arch}", "manylinux2010_{arch}", "manylinux1_{arch}", "linux_{arch}"]
PLATFORMS = {
    "linux-x86_64": ("linux", "x86_64", [p.format(arch="x86_64") for p in GLIBC]),
    "linux-aarch64": ("linux", "aarch64", [p.format(arch="aarch64") for p in GLIBC]),
    "macos-arm64": ("darwin", "arm64", list(mac_platforms((14, 0), "arm64"))),
}
TENSORFLOW = {"linux-x86_64": "tensorflow-cpu", "linux-aarch64": "tensorflow", "macos-arm64": "tensorflow"}
# Packages PyPI serves only as an sdist; each must be pure Python (checked by hand when added here).
PURE_PYTHON_SDISTS = {"kfp-server-api"}


def uv_lock() -> dict:
    return tomllib.loads((REPO / "uv.lock").read_text())


def requirement_lines() -> list[tuple[str, str, Marker | None]]:
    out = []
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, _, marker = line.partition(";")
        name, _, version = spec.strip().partition("==")
        assert version, f"requirements.lock: {line!r} is not pinned with =="
        out.append((canonicalize_name(name), version.strip(), Marker(marker) if marker.strip() else None))
    return out


def environment(python: str, platform: str) -> dict:
    sys_platform, machine, _ = PLATFORMS[platform]
    return {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": sys_platform,
            "platform_machine": machine, "platform_system": {"linux": "Linux", "darwin": "Darwin"}[sys_platform],
            "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "extra": ""}


def supported_tags(python: str, platform: str) -> set[Tag]:
    version = tuple(int(x) for x in python.split("."))
    platforms = PLATFORMS[platform][2]
    return set(cpython_tags(version, platforms=platforms)) | set(compatible_tags(version, platforms=platforms))


def selected(python: str, platform: str) -> dict[str, str]:
    env = environment(python, platform)
    chosen: dict[str, str] = {}
    for name, version, marker in requirement_lines():
        if marker is None or marker.evaluate(env):
            assert name not in chosen, f"{name}: two versions selected for Python {python} on {platform}"
            chosen[name] = version
    return chosen


def test_requirements_lock_is_the_export_of_uv_lock():
    uv = Path(sys.executable).parent / "uv"
    exported = subprocess.run([str(uv), "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
                               "--no-emit-project", "--no-dev"], cwd=REPO, capture_output=True, text=True, check=True)
    assert exported.stdout == (REPO / "requirements.lock").read_text(), "stale: run `make lock`"


def test_the_lock_covers_the_supported_pythons_and_platforms():
    lock = uv_lock()
    assert lock["requires-python"] == ">=3.10, <3.14"
    supported = [Marker(m) for m in lock["supported-markers"]]
    for platform in PLATFORMS:
        env = environment("3.12", platform)
        assert any(m.evaluate(env) for m in supported), f"uv.lock does not resolve for {platform}"


def test_no_local_version_labels_and_no_pytorch_in_the_default_install():
    for name, version, _ in requirement_lines():
        assert "+" not in version, f"{name}=={version}: PyPI serves no local version labels"
        assert name != "torch", "PyTorch is only in the optional extra gp"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("python", PYTHONS)
def test_every_selected_package_has_a_wheel_for_this_python_and_platform(python, platform):
    packages = {(canonicalize_name(p["name"]), p["version"]): p for p in uv_lock()["package"]}
    chosen = selected(python, platform)
    tags = supported_tags(python, platform)
    missing = []
    for name, version in sorted(chosen.items()):
        package = packages[(name, version)]
        wheels = [parse_wheel_filename(re.sub(r".*/", "", w["url"]))[3] for w in package.get("wheels", [])]
        if not any(tag in tags for wheel_tags in wheels for tag in wheel_tags):
            if not ("sdist" in package and name in PURE_PYTHON_SDISTS):
                missing.append(f"{name}=={version}")
    assert not missing, f"no wheel for CPython {python} on {platform}: {', '.join(missing)}"
    tensorflows = {n for n in chosen if n in {"tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"}}
    assert tensorflows == {TENSORFLOW[platform]}
    assert chosen["keras"].startswith("3.12.")
