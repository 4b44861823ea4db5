"""The local Katib backend: a Katib v1beta1 Experiment run on one machine with Optuna.

Katib has no local mode; :func:`run_experiment` runs the same Experiment YAML
with Katib's semantics (suggestions, metrics collection, median stop, goal and
trial counts) and writes Katib-shaped results into a run folder.

The names below load on first use (PEP 562): the runner imports Optuna (about 0.6 s), and
code that needs only Katib's constants (``katib_api``) must not pay for it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExperimentResult": "katib.backends.local.results",
    "RunFolderLock": "katib.backends.local.locks",
    "SweepInterrupted": "katib.backends.local.interrupts",
    "run_experiment": "katib.backends.local.experiment_run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
