"""A training process loads Keras without the optional packages it never uses (core/keras_load).

Each scenario runs in a fresh interpreter: Keras loads once per process, and this test
process may have loaded it (or scikit-learn, matplotlib) already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from components.core.keras_load import UNUSED_BY_TRAINING, keras_backend
from tests.conftest import REPO

# Prints, after the code under test, which of the skipped packages the process holds.
REPORT = f"import sys, json; print(json.dumps(sorted(m for m in {UNUSED_BY_TRAINING!r} if m in sys.modules)))"


def _loaded_after(code: str, **env: str) -> list[str]:
    run_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    result = subprocess.run([sys.executable, "-c", f"{code}\n{REPORT}"], cwd=REPO, env=run_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plain_keras_loads_them_all():
    """What the fix is for: on this install Keras' own start imports every one of them."""
    assert _loaded_after("import keras", KERAS_BACKEND="tensorflow") == sorted(UNUSED_BY_TRAINING)


def test_a_trial_process_loads_none_of_them(tiny_data, tmp_path):
    """`study train`, a Katib trial's command, run to the end: none was imported."""
    code = (f"from pipelines.cli import main\n"
            f"main(['train', '--data', {tiny_data!r}, '--output', {str(tmp_path / 'trial')!r}, '--epochs', '1',"
            f" '--filters', '8,8,8,8', '--batch-size', '100'])")
    assert _loaded_after(code, KERAS_BACKEND="tensorflow") == []
    assert (tmp_path / "trial" / "metrics.json").exists()


def test_they_import_as_usual_after_keras_has_loaded():
    code = ("from components.core.keras_load import load_keras\nload_keras()\n"
            "import sys; assert 'keras' in sys.modules\n"
            "import matplotlib.pyplot, scipy.stats, sklearn")
    assert _loaded_after(code, KERAS_BACKEND="tensorflow") == ["matplotlib", "scipy", "sklearn"]


def test_on_another_backend_nothing_is_held_back():
    """On JAX, jax is Keras' backend: load_keras leaves the import to Keras and loads nothing."""
    code = ("from components.core.keras_load import load_keras\nload_keras()\n"
            "import sys; assert 'keras' not in sys.modules")
    assert _loaded_after(code, KERAS_BACKEND="jax") == []


def test_the_backend_is_found_by_keras_own_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"  # no keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # the variable wins over the file
    assert keras_backend() == "torch"
    (tmp_path / "keras.json").write_text("{not json")
    monkeypatch.delenv("KERAS_BACKEND")
    assert keras_backend() == "tensorflow"
