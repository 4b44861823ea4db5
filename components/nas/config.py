"""The search's settings: what a profile's ``nas`` section, a KFP input or ``study nas``'s flags say."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

from components.core.config import from_mapping
from components.core.errors import UserError

BLOCK_TYPES = ("resnet", "xception", "vanilla", "efficient")
TUNERS = ("greedy", "bayesian", "hyperband", "random")


@dataclass
class NasConfig:
    block_type: str = "resnet"
    normalize: bool = True
    augment: bool = False
    pretrained: bool = False  # True downloads ImageNet weights: only when asked for
    tuner: str = "greedy"
    max_trials: int = 3
    epochs: int = 10
    batch_size: int = 32  # AutoKeras' default
    seed: int = 1
    train_images: int | None = None  # a stratified subset of the training split; None: all
    val_split: float | None = None  # carve validation from training (stratified); None: the artifact's

    def normalized(self) -> NasConfig:
        """A checked copy with canonical names; raises UserError on bad values."""
        block_type = str(self.block_type).strip().lower()
        if block_type not in BLOCK_TYPES:
            raise UserError(f"block type {self.block_type!r}: expected one of {', '.join(BLOCK_TYPES)}")
        tuner = str(self.tuner).strip().lower()
        if tuner not in TUNERS:
            raise UserError(f"tuner {self.tuner!r}: expected one of {', '.join(TUNERS)}")
        for name in ("max_trials", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name}={value}: expected a positive integer")
        if self.train_images is not None and (not isinstance(self.train_images, int) or self.train_images < 1):
            raise UserError(f"train_images={self.train_images}: expected a positive number of images")
        if self.val_split is not None and not 0.0 < self.val_split < 1.0:
            raise UserError(f"val_split={self.val_split}: expected a number between 0 and 1")
        if self.pretrained and block_type == "vanilla":
            raise UserError("pretrained=True: the vanilla block has no pretrained weights "
                            "(use resnet, xception or efficient)")
        return dataclasses.replace(self, block_type=block_type, tuner=tuner, normalize=bool(self.normalize),
                                   augment=bool(self.augment), pretrained=bool(self.pretrained))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NasConfig:
        """From a profile's ``nas`` section or the pipeline's ``nas_settings``.

        Built by the one settings converter: unknown keys are a user error, and KFP's floats
        (2.0 trials) are ints again; :meth:`normalized` then checks the values.
        """
        return from_mapping(cls, values)


def check_tuner_available(tuner: str) -> None:
    """KerasTuner's Bayesian optimization needs scikit-learn, an optional extra (keras-tuner[bayesian])."""
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError("tuner 'bayesian' needs scikit-learn (keras-tuner[bayesian]), which is not installed: "
                        "use greedy, random or hyperband, or install scikit-learn")
