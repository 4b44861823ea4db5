"""The search's settings: what a profile's ``nas`` section, a KFP input or ``study nas``'s flags say."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

from components.core.config import from_mapping, ruled
from components.core.errors import UserError
from components.core.rules import FRACTION, INTEGER, POSITIVE_INT, one_of

BLOCK_TYPES = ("resnet", "xception", "vanilla", "efficient")
TUNERS = ("greedy", "bayesian", "hyperband", "random")


@dataclass
class NasConfig:
    block_type: str = ruled(one_of(BLOCK_TYPES), default="resnet")
    normalize: bool = True
    augment: bool = False
    pretrained: bool = False  # True downloads ImageNet weights: only when asked for
    tuner: str = ruled(one_of(TUNERS), default="greedy")
    max_trials: int = ruled(POSITIVE_INT, default=3)
    epochs: int = ruled(POSITIVE_INT, default=10)
    batch_size: int = ruled(POSITIVE_INT, default=32)  # AutoKeras' default
    seed: int = ruled(INTEGER, default=1)
    # a stratified subset of the training split; None: all
    train_images: int | None = ruled(POSITIVE_INT.with_null("all training images"), default=None)
    # carve validation from training (stratified); None: the artifact's
    val_split: float | None = ruled(FRACTION.with_null("the artifact's validation split"), default=None)

    def normalized(self) -> NasConfig:
        """A checked copy with canonical names (the fields' rules); raises UserError on bad values."""
        config = from_mapping(NasConfig, dataclasses.asdict(self))
        if config.pretrained and config.block_type == "vanilla":
            raise UserError("pretrained=True: the vanilla block has no pretrained weights "
                            "(use resnet, xception or efficient)")
        return config

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NasConfig:
        """From a profile's ``nas`` section or the pipeline's ``nas_settings``.

        Built by the one settings converter: unknown keys are a user error, and KFP's floats
        (2.0 trials) are ints again, and the fields' rules check the values.
        """
        return from_mapping(cls, values)


def check_tuner_available(tuner: str) -> None:
    """KerasTuner's Bayesian optimization needs scikit-learn, an optional extra (keras-tuner[bayesian])."""
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError("tuner 'bayesian' needs scikit-learn (keras-tuner[bayesian]), which is not installed: "
                        "use greedy, random or hyperband, or install scikit-learn")
