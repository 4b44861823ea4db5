"""Load Keras for a training process without the optional packages it never uses.

Keras 3 on TensorFlow imports, at its own start, every one of these that is installed, each
import guarded by ``except ImportError``:

- scikit-learn, for ``keras.wrappers``' estimators;
- jax, for one ``tf.lite`` helper;
- matplotlib, for ``keras.visualization``;
- scipy, for the legacy ``tf.keras``' sparse-input check.

A Katib trial, an evaluation or a transfer phase uses none of them through Keras, and their
import was more than a third of a trial's start on the project's 2-core machine (``python -X
importtime``: about 16 s with them, 10 s without; bench item 9 records the smoke run's time).
``load_keras`` marks those not yet imported as absent while Keras and TensorFlow load, so
their guarded imports take the ``ImportError`` branch, then unmarks them: code that needs one
later (the transfer curves' matplotlib) imports it as usual.

Only on the TensorFlow backend: on JAX, jax is Keras' backend itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

UNUSED_BY_TRAINING = ("sklearn", "jax", "matplotlib", "scipy")


def keras_backend() -> str:
    """The backend Keras will pick, by its own rule: ``KERAS_BACKEND``, else ``keras.json``, else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_keras(skipped: tuple[str, ...] = UNUSED_BY_TRAINING) -> None:
    """Import Keras now, with ``skipped`` absent while it loads (TensorFlow backend, first load only)."""
    if "keras" in sys.modules or keras_backend() != "tensorflow":
        return
    marked = [name for name in skipped if name not in sys.modules]
    for name in marked:
        sys.modules[name] = None  # an import of it raises ImportError, as if not installed
    try:
        import keras  # noqa: F401
    finally:
        for name in marked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
