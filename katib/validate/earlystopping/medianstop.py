"""The median stop early stopping service's settings checks.

pkg/earlystopping/v1beta1/medianstop/service.py at v0.19.0
(validate_medianstop_setting): any other setting name fails the Experiment.
"""

from __future__ import annotations

from katib.validate.algorithm_settings import SettingCheck, check_known_settings, int_at_least, read_settings
from katib.validate.katib_config import EARLY_STOPPING_ALGORITHMS
from katib.validate.values import Problems

SETTINGS_PATH = "spec.earlyStopping.algorithmSettings"

MEDIANSTOP: dict[str, SettingCheck] = {"min_trials_required": int_at_least(1), "start_step": int_at_least(1)}


def check_early_stopping_settings(spec: dict) -> Problems:
    """The early stopping service's settings check for spec.earlyStopping."""
    early = spec.get("earlyStopping")
    if not isinstance(early, dict) or early.get("algorithmName") not in EARLY_STOPPING_ALGORITHMS:
        return []  # none asked for, or the webhook's check (katib.validate.webhook.experiment) reports it
    settings, problems = read_settings(SETTINGS_PATH, early.get("algorithmSettings"))
    return problems + check_known_settings(SETTINGS_PATH, early["algorithmName"], settings, MEDIANSTOP)
