"""The hyperparameters of one trial and their rules: no Keras import, so CLIs start fast."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from components.core.config import from_mapping, ruled
from components.core.profiles import read_profile
from components.core.rules import FRACTION, INTEGER, POSITIVE_INT, POSITIVE_NUMBER, one_of, per_layer

# The study's eight optimizers, by the study's names (matched case-insensitively).
OPTIMIZERS = ("Adadelta", "Adagrad", "Adamax", "Ftrl", "Nadam", "RMSprop", "Adam", "SGD")
ACTIVATIONS = ("elu", "relu", "selu")
# Every activation Keras accepts by name may be used; the sweeps use ACTIVATIONS.
KNOWN_ACTIVATIONS = ("elu", "relu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid",
                     "softplus", "softsign", "leaky_relu", "relu6", "mish", "linear")
NUM_CONV = 4
# The study's trial settings are the study profile's (components/core/profiles.yaml), not restated here.
_STUDY_TRAIN = read_profile("study")["train"]
STUDY_ACTIVATIONS = tuple(_STUDY_TRAIN["activations"])
STUDY_FILTERS = tuple(_STUDY_TRAIN["filters"])


def _activation_problem(value: str) -> str | None:
    if value.strip().lower() in KNOWN_ACTIVATIONS:
        return None
    return f"{value!r} is not an activation; expected one of {', '.join(KNOWN_ACTIVATIONS)}"


def _filter_problem(value: int) -> str | None:
    return None if value >= 1 else f"{value!r} is not a positive integer filter count"


ACTIVATIONS_RULE = per_layer(NUM_CONV, "activations", _activation_problem, "[selu, relu, relu, relu]",
                             canonical=lambda a: a.strip().lower())
FILTERS_RULE = per_layer(NUM_CONV, "positive integer filter counts", _filter_problem, "[32, 64, 64, 64]")
DEFAULT_LEARNING_RATE = "the optimizer's default"


@dataclass
class TrialConfig:
    """One trial's settings (a profile's ``train`` section, a ``study train``'s flags), checked by
    their rules whenever they are built through :func:`from_mapping` or :meth:`normalized`."""

    optimizer: str = ruled(one_of(OPTIMIZERS), default=_STUDY_TRAIN["optimizer"])
    learning_rate: float | None = ruled(POSITIVE_NUMBER.with_null(DEFAULT_LEARNING_RATE),
                                        default=_STUDY_TRAIN["learning_rate"])  # None: the optimizer's Keras default
    activations: tuple[str, ...] = ruled(ACTIVATIONS_RULE, default=STUDY_ACTIVATIONS)
    filters: tuple[int, ...] = ruled(FILTERS_RULE, default=STUDY_FILTERS)
    epochs: int = ruled(POSITIVE_INT, default=_STUDY_TRAIN["epochs"])
    batch_size: int = ruled(POSITIVE_INT, default=_STUDY_TRAIN["batch_size"])
    seed: int = ruled(INTEGER, default=_STUDY_TRAIN["seed"])
    # Batch norm's moving-average momentum: Keras' 0.99 is the study's. Its moving statistics keep
    # momentum**steps of their initial values, so a run of a few hundred steps needs less.
    bn_momentum: float = ruled(FRACTION, default=_STUDY_TRAIN["bn_momentum"])
    # A stratified subset of the training split, the same for every trial of a seed: a smoke sweep's
    # trials rank settings on fewer images. None: all of them (at least this many: all).
    train_images: int | None = ruled(POSITIVE_INT.with_null("all training images"),
                                     default=_STUDY_TRAIN["train_images"])

    def normalized(self) -> TrialConfig:
        """A checked copy with canonical names; raises UserError on bad values."""
        return from_mapping(TrialConfig, dataclasses.asdict(self))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["activations"], d["filters"] = list(self.activations), list(self.filters)
        return d


def check_conv_settings(activations: Sequence[str], filters: Sequence[int]) -> tuple:
    """The per-layer settings, checked by the same rules as a trial's (one line for bad values)."""
    config = TrialConfig(activations=tuple(activations), filters=tuple(filters)).normalized()
    return config.activations, config.filters
