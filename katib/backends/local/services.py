"""Katib algorithm name -> the local re-implementation of Katib's own suggestion service for it."""

from __future__ import annotations

from pathlib import Path

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.hyperband import HyperbandService
from katib.backends.local.pbt import PbtService
from katib.backends.local.suggestion_service import SuggestionService


def create_service(spec: ExperimentSpec, run_dir: Path) -> SuggestionService | None:
    """The service for ``spec``'s algorithm, its settings checked (None: an Optuna algorithm)."""
    if spec.algorithm_name == "hyperband":
        return HyperbandService(spec)
    if spec.algorithm_name == "pbt":
        return PbtService(spec, run_dir)
    return None
