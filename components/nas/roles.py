"""Where a process stands in a search: alone, KerasTuner's chief oracle, or a worker.

Beyond one machine, KerasTuner's distributed mode runs one chief oracle and workers over
gRPC. The same command starts as either, from the variables KerasTuner reads:
``KERASTUNER_TUNER_ID`` (``chief``, ``tuner0``, ...), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``. Workers run trials and exit when the oracle has no more; the
chief hands out trials, then exports the best model once. All of them must see the same
search folder (a shared volume; ``k8s/components/nas`` mounts one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from components.core.errors import UserError

# Environment variables of KerasTuner's distributed mode (keras_tuner/src/distribute/utils.py).
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"


@dataclass(frozen=True)
class Role:
    """Where this process stands in a search: alone, KerasTuner's chief oracle, or a worker."""

    kind: str  # "single", "chief" or "worker"
    tuner_id: str = "tuner0"
    oracle: str = ""  # ip:port of the chief

    @property
    def exports(self) -> bool:
        return self.kind != "worker"


def search_role(environ: dict | None = None) -> Role:
    """The role KerasTuner will take from the environment, checked so that a mistake is one line."""
    env = os.environ if environ is None else environ
    ip, port, tuner_id = env.get(ENV_ORACLE_IP), env.get(ENV_ORACLE_PORT), env.get(ENV_TUNER_ID)
    if not ip:
        return Role("single", tuner_id or "tuner0")
    if not port or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{ENV_ORACLE_PORT}={port or ''}: expected the chief oracle's port (1-65535) "
                        f"when {ENV_ORACLE_IP} is set")
    if not tuner_id:
        raise UserError(f"{ENV_TUNER_ID} is not set: expected 'chief' or a worker id such as 'tuner0' "
                        f"when {ENV_ORACLE_IP} is set")
    # KerasTuner's own test: an id containing "chief" is the chief (distribute/utils.py).
    return Role("chief" if "chief" in tuner_id else "worker", tuner_id, f"{ip}:{port}")
