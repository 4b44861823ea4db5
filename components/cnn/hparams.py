"""The hyperparameters of one trial and their checks: no Keras import, so CLIs start fast."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from components.core.errors import UserError

# The study's eight optimizers, by the study's names (matched case-insensitively).
OPTIMIZERS = ("Adadelta", "Adagrad", "Adamax", "Ftrl", "Nadam", "RMSprop", "Adam", "SGD")
ACTIVATIONS = ("elu", "relu", "selu")
# Every activation Keras accepts by name may be used; the sweeps use ACTIVATIONS.
KNOWN_ACTIVATIONS = ("elu", "relu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid",
                     "softplus", "softsign", "leaky_relu", "relu6", "mish", "linear")
STUDY_ACTIVATIONS = ("relu", "relu", "relu", "relu")
STUDY_FILTERS = (32, 32, 64, 64)
NUM_CONV = 4


def check_conv_settings(activations: Sequence[str], filters: Sequence[int]) -> tuple:
    """Normalise and check the per-layer settings; one clear line for bad values."""
    activations = tuple(str(a).strip().lower() for a in activations)
    filters = tuple(filters)
    if len(activations) != NUM_CONV:
        raise UserError(f"activations={','.join(activations)}: expected {NUM_CONV} values, "
                        "one per conv layer")
    if len(filters) != NUM_CONV:
        raise UserError(f"filters={','.join(map(str, filters))}: expected {NUM_CONV} values, "
                        "one per conv layer")
    for a in activations:
        if a not in KNOWN_ACTIVATIONS:
            raise UserError(f"activation {a!r}: expected one of {', '.join(KNOWN_ACTIVATIONS)}")
    for f in filters:
        if not isinstance(f, int) or isinstance(f, bool) or f < 1:
            raise UserError(f"filters value {f!r}: expected a positive integer")
    return activations, filters


@dataclass
class TrialConfig:
    optimizer: str = "Adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    activations: tuple[str, ...] = STUDY_ACTIVATIONS
    filters: tuple[int, ...] = STUDY_FILTERS
    epochs: int = 10
    batch_size: int = 128
    seed: int = 1
    # Batch norm's moving-average momentum: Keras' 0.99 is the study's. Its moving statistics keep
    # momentum**steps of their initial values, so a run of a few hundred steps needs less.
    bn_momentum: float = 0.99

    def normalized(self) -> TrialConfig:
        """A checked copy with canonical names; raises UserError on bad values."""
        by_lower = {o.lower(): o for o in OPTIMIZERS}
        optimizer = by_lower.get(str(self.optimizer).strip().lower())
        if optimizer is None:
            raise UserError(f"optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        activations, filters = check_conv_settings(self.activations, self.filters)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"{name}={value}: expected a positive integer")
        if not (isinstance(self.bn_momentum, int | float) and 0 < self.bn_momentum < 1):
            raise UserError(f"bn_momentum={self.bn_momentum}: expected a number between 0 and 1")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"learning_rate={self.learning_rate}: expected a positive number")
        return dataclasses.replace(self, optimizer=optimizer, activations=activations, filters=filters,
                                   bn_momentum=float(self.bn_momentum))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["activations"], d["filters"] = list(self.activations), list(self.filters)
        return d
