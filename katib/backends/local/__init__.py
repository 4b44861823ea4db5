"""The local Katib backend: a Katib v1beta1 Experiment run on one machine with Optuna.

Katib has no local mode; :func:`run_experiment` runs the same Experiment YAML
with Katib's semantics (suggestions, metrics collection, median stop, goal and
trial counts) and writes Katib-shaped results into a run folder.
"""

from katib.backends.local.interrupts import SweepInterrupted
from katib.backends.local.locks import RunFolderLock
from katib.backends.local.results import ExperimentResult
from katib.backends.local.runner import run_experiment

__all__ = ["ExperimentResult", "RunFolderLock", "SweepInterrupted", "run_experiment"]
