"""The transfer-learning bases and augmentation settings, without importing Keras.

A base is one :class:`BaseSpec` in :data:`BASES`: its name, its ``keras.applications``
constructor, the study's input size, its preprocessing, where fine-tuning starts and
the study's published figures. The definitions drive the transfer settings' defaults
and checks, the ``study transfer`` flags, the pipeline's transfer steps (one per base)
and the report's Question 3 rows. Adding a base is one definition here and, where it
needs other settings than the shared ones, a ``transfer.bases.<name>`` entry in the
profile. Everything here can be checked before Keras loads, so a bad setting is
refused in a fraction of a second; ``components.transfer.models`` builds the Keras
objects from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.core.errors import UserError

BASE_LAYER = "base"  # the base's name inside the transfer model
PREPROCESSING = ("tf", "torch", "none")


@dataclass(frozen=True)
class BaseSpec:
    """One ``keras.applications`` base and what the study needs to know about it."""

    name: str
    constructor: str  # attribute of keras.applications
    min_size: int  # smallest input side Keras accepts without the top
    preprocessing: str  # "tf": [-1, 1]; "torch": ImageNet mean/std; "none": the base rescales itself
    fine_tune_from: int  # default first unfrozen layer (index into the base's layers)
    input_size: int = 224  # the study's input side: the default of the ``input_size`` setting
    has_alpha: bool = False  # MobileNet width multiplier
    # The study's published validation accuracy before and after fine-tuning (the report's "study" columns).
    study_val_accuracy_frozen: float | None = None
    study_val_accuracy_finetuned: float | None = None

    def __post_init__(self):
        if self.preprocessing not in PREPROCESSING:  # a definition's mistake, not a user's
            raise ValueError(f"{self.name}: preprocessing {self.preprocessing!r}, expected one of {PREPROCESSING}")

    def build(self, input_size: int, alpha: float | None = None, weights: str | None = None):
        """The base alone, no top: ``keras.applications.<constructor>(...)``."""
        import keras

        kwargs = {"alpha": alpha if alpha is not None else 1.0} if self.has_alpha else {}
        application = getattr(keras.applications, self.constructor)
        return application(input_shape=(input_size, input_size, 3), include_top=False,
                           weights=weights, name=BASE_LAYER, **kwargs)


BASES = {
    # fine_tune_from: MobileNetV2 as in the TensorFlow transfer-learning tutorial (layer 100 of 154);
    # InceptionV3 as in the keras.applications example: the top two inception blocks (after mixed8).
    "mobilenet_v2": BaseSpec("mobilenet_v2", "MobileNetV2", min_size=32, preprocessing="tf", fine_tune_from=100,
                             has_alpha=True, study_val_accuracy_frozen=0.9223, study_val_accuracy_finetuned=1.0),
    "inception_v3": BaseSpec("inception_v3", "InceptionV3", min_size=75, preprocessing="tf", fine_tune_from=249,
                             study_val_accuracy_frozen=0.9806, study_val_accuracy_finetuned=1.0),
}


def base_spec(name: str) -> BaseSpec:
    spec = BASES.get(str(name).strip().lower())
    if spec is None:
        raise UserError(f"base {name!r}: expected one of {', '.join(BASES)}")
    return spec


def describe_minimum_sizes() -> str:
    """``at least 32 for MobileNetV2, 75 for InceptionV3``: for help texts."""
    return "at least " + ", ".join(f"{spec.min_size} for {spec.constructor}" for spec in BASES.values())


def describe_fine_tune_defaults() -> str:
    """``100 for MobileNetV2, 249 for InceptionV3``: for help texts."""
    return ", ".join(f"{spec.fine_tune_from} for {spec.constructor}" for spec in BASES.values())


def check_input_size(spec: BaseSpec, input_size: int) -> None:
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < spec.min_size:
        raise UserError(f"input_size={input_size}: {spec.constructor} needs images of at least "
                        f"{spec.min_size}x{spec.min_size} pixels")


def check_alpha(spec: BaseSpec, alpha: float | None) -> None:
    if alpha is None:
        return
    if not spec.has_alpha:
        raise UserError(f"alpha={alpha}: only MobileNet bases have a width multiplier, not {spec.name}")
    if not (isinstance(alpha, int | float) and 0 < alpha and math.isfinite(alpha)):
        raise UserError(f"alpha={alpha}: expected a positive number (MobileNetV2 width multiplier)")


@dataclass(frozen=True)
class Augmentation:
    """Random flip and rotation by default (the study's augmentation layer)."""

    flip: str = "horizontal"  # horizontal | vertical | horizontal_and_vertical | none
    rotation: float = 0.1  # fraction of a full turn, both directions; 0: off
    zoom: float = 0.0  # fraction of the side, both directions; 0: off

    FLIPS = ("horizontal", "vertical", "horizontal_and_vertical", "none")

    def check(self) -> None:
        if self.flip not in self.FLIPS:
            raise UserError(f"flip={self.flip!r}: expected one of {', '.join(self.FLIPS)}")
        for name in ("rotation", "zoom"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise UserError(f"{name}={value}: expected a fraction from 0 (off) to below 1")

    @property
    def enabled(self) -> bool:
        return self.flip != "none" or bool(self.rotation) or bool(self.zoom)


DEFAULT_AUGMENTATION = Augmentation()
NO_AUGMENTATION = Augmentation(flip="none", rotation=0.0, zoom=0.0)
