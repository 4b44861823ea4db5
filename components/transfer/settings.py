"""A transfer run's settings: built by the one converter, checked before Keras loads.

:func:`settings_from_profile` reads a profile's ``transfer`` section for one base;
``study transfer`` builds the same :class:`TransferSettings` from its flags. Either
way :meth:`TransferSettings.checked` types every value with
:func:`components.core.config.from_mapping` (KFP's floats become ints) and then
checks ranges and choices, one clear line for the first bad value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from components.core.config import from_mapping
from components.core.errors import UserError
from components.transfer.bases import Augmentation, base_spec, check_alpha, check_input_size
from components.transfer.data import CACHE_MODES, SOURCE_CLASSES

SWITCHES = ("auto", "on", "off")
WEIGHT_KINDS = ("imagenet", "none", "source")


@dataclass
class TransferSettings:
    base: str = "mobilenet_v2"
    weights: str = "none"  # imagenet | none | source | PATH | gs://URI of a weights file
    input_size: int | None = None  # image side in pixels; None: the base's (BaseSpec.input_size)
    alpha: float | None = None  # MobileNet width multiplier; None: the base's default
    flip: str = "horizontal"
    rotation: float = 0.1
    zoom: float = 0.0
    dropout: float = 0.4
    frozen_epochs: int = 10
    fine_tune_epochs: int = 10
    fine_tune_from: int | str | None = None  # layer index or name in the base; None: the base's default
    frozen_learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    batch_size: int = 32
    seed: int = 1
    # How an image folder is split (a dataset artifact keeps its own splits).
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 42
    classes: tuple[int, ...] | None = None  # a dataset artifact's classes to use; None: all
    cache: str = "memory"  # memory | disk | none
    mixed_precision: str = "auto"  # on a GPU
    xla: str = "auto"  # on a GPU; XLA compiles slowly on a CPU
    # weights "source": the pretraining task.
    source_classes: tuple[int, ...] = SOURCE_CLASSES
    source_images: int | None = None  # training images drawn for pretraining; None: all
    source_epochs: int = 3
    source_learning_rate: float = 1e-3

    def checked(self) -> TransferSettings:
        """A typed, normalized copy; one clear line for the first bad value."""
        settings = _typed({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
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


def _typed(values: Mapping) -> TransferSettings:
    """The one converter's settings. Where it refuses a value that a range check gives a meaning
    (``dropout=abc: expected a rate from 0 to below 1``), the meaning is the message."""
    try:
        return from_mapping(TransferSettings, values)
    except UserError:
        if set(values) <= SETTING_NAMES:
            _check_values(TransferSettings(**values))
        raise


def _positive_int(name: str, value, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UserError(f"{name}={value}: expected a {'non-negative' if allow_zero else 'positive'} integer")


def _check_values(s: TransferSettings) -> None:
    """Ranges and choices, in the order a reader meets them; safe on values of any type."""
    spec = base_spec(s.base)
    check_input_size(spec, spec.input_size if s.input_size is None else s.input_size)
    check_alpha(spec, s.alpha)
    Augmentation(s.flip, s.rotation, s.zoom).check()
    for name in ("frozen_epochs", "batch_size", "source_epochs"):
        _positive_int(name, getattr(s, name))
    _positive_int("fine_tune_epochs", s.fine_tune_epochs, allow_zero=True)
    if s.source_images is not None:
        _positive_int("source_images", s.source_images)
    for name in ("frozen_learning_rate", "fine_tune_learning_rate", "source_learning_rate"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
            raise UserError(f"{name}={value}: expected a positive number")
    if not (isinstance(s.dropout, int | float) and 0.0 <= s.dropout < 1.0):
        raise UserError(f"dropout={s.dropout}: expected a rate from 0 to below 1")
    for name in ("val_fraction", "test_fraction"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and 0.0 < value < 1.0):
            raise UserError(f"{name}={value}: expected a fraction between 0 and 1")
    if s.val_fraction + s.test_fraction >= 1.0:
        raise UserError(f"val_fraction={s.val_fraction} + test_fraction={s.test_fraction}: "
                        "leaves no training images")
    for name, allowed in (("cache", CACHE_MODES), ("mixed_precision", SWITCHES), ("xla", SWITCHES)):
        if getattr(s, name) not in allowed:
            raise UserError(f"{name}={getattr(s, name)!r}: expected one of {', '.join(allowed)}")
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
    return _typed({**values, "base": base})
