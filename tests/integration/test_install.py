"""`make install` (scripts/install.sh): the Python it accepts, a half-built .venv, no network.

These run the real script into throw-away virtual environments. Installs reuse the machine's
uv cache (filled by the suite's own `make install`), so each takes seconds; the cold install
from an empty cache is measured by `make bench BENCH_ONLY=8`, and CI installs into clean
environments with Python 3.10 and 3.13.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.items.install import clean_install_environment
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "install.sh"
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def install(venv: Path, python: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(venv), python], capture_output=True, text=True, timeout=900,
                          env=env or {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})


def pyenv_python(minor: str) -> str:
    found = sorted(PYENV_VERSIONS.glob(f"{minor}.*/bin/python{minor}"))
    if not found:
        pytest.skip(f"skipped: no Python {minor} under {PYENV_VERSIONS} to try")
    return str(found[-1])


@pytest.mark.parametrize("minor", ["3.9", "2.7"])
def test_an_unsupported_python_gets_one_line_and_nothing_is_created(tmp_path, minor):
    venv = tmp_path / "venv"
    result = install(venv, pyenv_python(minor))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert f"is Python {minor}; expected one of 3.10 3.11 3.12 3.13" in result.stderr
    assert not venv.exists()


def test_something_that_is_not_a_python_gets_one_line(tmp_path):
    result = install(tmp_path / "venv", "/bin/false")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: PYTHON=/bin/false is not a Python interpreter that runs here; "
                                     "expected Python 3.10 3.11 3.12 3.13")


@pytest.fixture(scope="module")
def built_venv(tmp_path_factory) -> Path:
    """A venv that an interrupted install left behind (no stamp, a stray file), then `install.sh` on it."""
    venv = tmp_path_factory.mktemp("half") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (venv / "left-by-the-interrupted-install").write_text("")
    result = install(venv, sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "has no completion stamp (an interrupted install); rebuilding it" in result.stdout
    return venv


def test_a_half_built_venv_is_rebuilt_not_used(built_venv):
    assert not (built_venv / "left-by-the-interrupted-install").exists()
    assert (built_venv / ".installed").read_text().strip() == "python {}.{}".format(*sys.version_info[:2])
    probe = subprocess.run([str(built_venv / "bin" / "python"), "-c",
                            "import keras, kfp, optuna, components, importlib.util as u; "
                            "print(u.find_spec('torch') is None)"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "True"  # no PyTorch in the default install


def test_the_install_compiles_bytecode_so_no_process_compiles_the_dependencies_again(built_venv):
    """uv leaves .pyc files to the first import, which cannot write them under PYTHONDONTWRITEBYTECODE
    (set by many CI images): each trial then compiled TensorFlow's modules again (about 7 CPU-seconds
    of a smoke trial's start on 2 cores). Every module of these packages is compiled at install time,
    including those no test imports."""
    probe = subprocess.run([str(built_venv / "bin" / "python"), "-c", """
import importlib.util, pathlib, sysconfig
site = pathlib.Path(sysconfig.get_paths()["purelib"])
for package in ("tensorflow", "keras", "kfp", "optuna"):
    if not (site / package).is_dir():
        continue  # TensorFlow where the platform has no wheel
    sources = list((site / package).rglob("*.py"))
    missing = [s for s in sources if not pathlib.Path(importlib.util.cache_from_source(str(s))).is_file()]
    print(package, len(sources), len(missing), *missing[:3])
"""], capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert probe.returncode == 0, probe.stderr
    assert {line.split()[0] for line in probe.stdout.splitlines()} >= {"keras", "kfp", "optuna"}, probe.stdout
    for line in probe.stdout.splitlines():
        package, sources, missing = line.split()[:3]
        assert int(sources) > 100, line
        assert int(missing) == 0, line


def test_no_network_and_no_cache_shows_uvs_error_then_one_line_on_how_to_retry(built_venv, tmp_path):
    # Take one locked package away so that the sync has something to fetch, then cut uv off.
    subprocess.run([str(built_venv / "bin" / "uv"), "pip", "uninstall", "--python", str(built_venv / "bin" / "python"),
                    "six"], check=True, capture_output=True)
    env = clean_install_environment(tmp_path / "empty-cache")
    env["UV_OFFLINE"] = "1"
    result = install(built_venv, sys.executable, env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("error: installing the locked dependencies (uv.lock) failed (the message above says why); "
                    "check the network or the package index (UV_INDEX_URL), then run 'make install' again")
    assert len(result.stderr.strip().splitlines()) > 1, "uv's own message comes first"
    assert not (built_venv / ".installed").exists(), "a failed install leaves no stamp, so the next one rebuilds"


def test_the_uv_bootstrap_fails_with_pips_error_then_one_line(tmp_path):
    env = clean_install_environment(tmp_path / "cache")
    env["PIP_NO_INDEX"] = "1"  # pip may not reach any index: as with no network
    result = install(tmp_path / "venv", sys.executable, env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: installing uv ") and lines[-1].endswith("then run 'make install' again")
    assert any("No matching distribution" in line or "ERROR" in line for line in lines[:-1])
    assert not (tmp_path / "venv" / ".installed").exists()


def test_the_clean_environment_drops_every_pip_and_uv_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("UV_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple")
    env = clean_install_environment(tmp_path)
    assert not {k for k in env if k.startswith(("PIP_", "UV_"))} - {"PIP_CONFIG_FILE", "PIP_NO_CACHE_DIR",
                                                                      "UV_CACHE_DIR"}
    assert env["PIP_CONFIG_FILE"] == os.devnull and env["UV_CACHE_DIR"] == str(tmp_path)
