"""A transfer run's settings: built by the one converter, checked before Keras loads.

:func:`settings_from_profile` reads a profile's ``transfer`` section for one base;
``study transfer`` builds the same :class:`TransferSettings` from its flags. Either
way :meth:`TransferSettings.checked` types every value with
:func:`components.core.config.from_mapping` (KFP's floats become ints, the fields' rules) and then
checks what depends on the base and on several fields, one clear line for the first bad value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from components.core.config import Rule, from_mapping, ruled
from components.core.errors import UserError
from components.core.rules import FRACTION, INTEGER, NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, one_of
from components.transfer.bases import Augmentation, base_spec, check_alpha, check_input_size
from components.transfer.data import CACHE_MODES, SOURCE_CLASSES

SWITCHES = ("auto", "on", "off")
WEIGHT_KINDS = ("imagenet", "none", "source")
RATE = Rule("a rate from 0 to below 1", lambda v: 0.0 <= v < 1.0)


@dataclass
class TransferSettings:
    base: str = "mobilenet_v2"
    weights: str = "none"  # imagenet | none | source | PATH | gs://URI of a weights file
    input_size: int | None = None  # image side in pixels; None: the base's (BaseSpec.input_size)
    alpha: float | None = None  # MobileNet width multiplier; None: the base's default
    flip: str = "horizontal"
    rotation: float = 0.1
    zoom: float = 0.0
    dropout: float = ruled(RATE, default=0.4)
    frozen_epochs: int = ruled(POSITIVE_INT, default=10)
    fine_tune_epochs: int = ruled(NON_NEGATIVE_INT, default=10)
    fine_tune_from: int | str | None = None  # layer index or name in the base; None: the base's default
    frozen_learning_rate: float = ruled(POSITIVE_NUMBER, default=1e-3)
    fine_tune_learning_rate: float = ruled(POSITIVE_NUMBER, default=1e-5)
    batch_size: int = ruled(POSITIVE_INT, default=32)
    seed: int = ruled(INTEGER, default=1)
    # How an image folder is split (a dataset artifact keeps its own splits).
    val_fraction: float = ruled(FRACTION, default=0.2)
    test_fraction: float = ruled(FRACTION, default=0.2)
    split_seed: int = ruled(INTEGER, default=42)
    classes: tuple[int, ...] | None = None  # a dataset artifact's classes to use; None: all
    cache: str = ruled(one_of(CACHE_MODES), default="memory")  # where decoded images are kept
    mixed_precision: str = ruled(one_of(SWITCHES), default="auto")  # on a GPU
    xla: str = ruled(one_of(SWITCHES), default="auto")  # on a GPU; XLA compiles slowly on a CPU
    # weights "source": the pretraining task.
    source_classes: tuple[int, ...] = SOURCE_CLASSES
    # training images drawn for pretraining; None: all
    source_images: int | None = ruled(POSITIVE_INT.with_null("all"), default=None)
    source_epochs: int = ruled(POSITIVE_INT, default=3)
    source_learning_rate: float = ruled(POSITIVE_NUMBER, default=1e-3)

    def checked(self) -> TransferSettings:
        """A typed, normalized copy; one clear line for the first bad value."""
        settings = from_mapping(TransferSettings, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        _check_values(settings)
        spec = base_spec(settings.base)
        weights = settings.weights.strip()
        fine_tune_from = settings.fine_tune_from
        if isinstance(fine_tune_from, str) and fine_tune_from.strip().lstrip("-").isdigit():
            fine_tune_from = int(fine_tune_from)
        return dataclasses.replace(
            settings, base=spec.name, weights=weights.lower() if weights.lower() in WEIGHT_KINDS else weights,
            input_size=spec.input_size if settings.input_size is None else settings.input_size,
            fine_tune_from=fine_tune_from)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("classes", "source_classes"):
            d[key] = None if d[key] is None else list(d[key])
        return d


SETTING_NAMES = {f.name for f in dataclasses.fields(TransferSettings)}


def _check_values(s: TransferSettings) -> None:
    """What the fields' rules cannot say alone: the base's sizes, the augmentation, the splits' sum."""
    spec = base_spec(s.base)
    check_input_size(spec, spec.input_size if s.input_size is None else s.input_size)
    check_alpha(spec, s.alpha)
    Augmentation(s.flip, s.rotation, s.zoom).check()
    if s.val_fraction + s.test_fraction >= 1.0:
        raise UserError(f"val_fraction={s.val_fraction} + test_fraction={s.test_fraction}: "
                        "leaves no training images")
    weights = str(s.weights).strip()
    if not weights:
        raise UserError("weights='': expected imagenet, none, source, or a weights file path or gs:// URI")
    if weights.lower() not in WEIGHT_KINDS and not weights.endswith((".weights.h5", ".h5")):
        raise UserError(f"weights {weights!r}: expected imagenet, none, source, or a .weights.h5/.h5 file "
                        "(path or gs:// URI)")


_PROFILE_ONLY = ("bases", "source", "target")


def settings_from_profile(section: Mapping, base: str) -> TransferSettings:
    """The ``transfer`` section of a profile, for one base.

    Flat keys are settings; ``source.{classes,images,epochs,learning_rate}`` are
    ``source_*``; ``bases.<base>`` overrides anything for that base; ``target``
    belongs to the data step (:func:`components.transfer.data.write_image_folder`).
    """
    values = {k: v for k, v in section.items() if k not in _PROFILE_ONLY}
    values.update({f"source_{k}": v for k, v in (section.get("source") or {}).items()})
    values.update((section.get("bases") or {}).get(base) or {})
    unknown = sorted(set(values) - SETTING_NAMES)
    if unknown:
        raise UserError(f"transfer settings {', '.join(unknown)}: unknown "
                        f"(settings: {', '.join(sorted(SETTING_NAMES))})")
    return from_mapping(TransferSettings, {**values, "base": base})
