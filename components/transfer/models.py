"""Transfer-learning models (Question 3), in Keras 3 only.

The study's model, for any ``keras.applications`` base::

    image (size, size, 3), pixels 0..255
      -> augmentation (random flip + rotation)
      -> the base's own preprocessing
      -> the base, no top
      -> global average pooling -> Dropout(0.4) -> dense softmax predictions

Phase 1 trains the head with the base frozen; phase 2 unfreezes the base from
one layer on. Both phases keep the base's BatchNormalization layers in
inference mode: their ``trainable`` flag stays False, which Keras 3 treats as
"use the moving statistics, never update them". The flag is saved with the
model; a ``training=False`` call argument (the guide's other device, also used
here) is not restored by ``keras.models.load_model``, so it alone would let a
resumed fine-tuning run update the statistics.

The bases themselves (:data:`BASES`, one definition each) and the settings
checks live in ``components.transfer.bases``, which loads without Keras.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
from keras import layers

from components.core.errors import UserError
from components.core.training import compile_built
from components.transfer.bases import (  # noqa: F401 - the registry is part of this module's interface
    BASE_LAYER,
    BASES,
    DEFAULT_AUGMENTATION,
    NO_AUGMENTATION,
    Augmentation,
    BaseSpec,
    base_spec,
    check_alpha,
    check_input_size,
)

WEIGHT_SUFFIXES = (".weights.h5", ".h5")
# ImageNet statistics of the "torch" preprocessing mode, on 0..255 pixels.
_TORCH_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_TORCH_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


# ------------------------------------------------------------------------ layers

def preprocessing_layer(spec: BaseSpec) -> layers.Layer:
    """The base's own ``preprocess_input`` as a layer, so it is saved with the model."""
    if spec.preprocessing == "tf":  # x / 127.5 - 1
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocessing")
    if spec.preprocessing == "torch":  # (x / 255 - mean) / std
        return layers.Normalization(mean=_TORCH_MEAN, variance=[s * s for s in _TORCH_STD],
                                    name="preprocessing")
    if spec.preprocessing == "none":
        return layers.Identity(name="preprocessing")
    raise ValueError(f"{spec.name}: unknown preprocessing mode {spec.preprocessing!r}")


def augmentation_layer(augmentation: Augmentation, seed: int | None = None) -> keras.Sequential | None:
    """The study's augmentation layer (active in training only); None when every transform is off."""
    a = augmentation
    steps = []
    if a.flip != "none":
        steps.append(layers.RandomFlip(a.flip, seed=seed, name="flip"))
    if a.rotation:
        steps.append(layers.RandomRotation(a.rotation, fill_mode="nearest", seed=seed, name="rotation"))
    if a.zoom:
        steps.append(layers.RandomZoom(a.zoom, fill_mode="nearest", seed=seed, name="zoom"))
    return keras.Sequential(steps, name="augmentation") if steps else None


# ------------------------------------------------------------------------- model

def build_transfer_model(base: str, num_classes: int, *, input_size: int = 224, alpha: float | None = None,
                         weights: str | None = None, augmentation: Augmentation = DEFAULT_AUGMENTATION,
                         dropout: float = 0.4, seed: int | None = None,
                         base_inference: bool = True) -> keras.Model:
    """The study's transfer model, base frozen (phase 1).

    ``weights``: None (random), ``"imagenet"`` (the Keras download) or a local
    weights file of the base (see :func:`load_base_weights`). ``base_inference``
    False is for pretraining a base from scratch, whose batch statistics must learn.
    """
    spec = base_spec(base)
    check_input_size(spec, input_size)
    check_alpha(spec, alpha)
    augmentation.check()
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"dropout={dropout}: expected a rate from 0 to below 1")
    if num_classes < 2:
        raise UserError(f"num_classes={num_classes}: expected at least 2 classes")

    base_model = _base_with_weights(spec, input_size, alpha, weights)
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = inputs
    augment = augmentation_layer(augmentation, seed)
    if augment is not None:
        x = augment(x)
    x = preprocessing_layer(spec)(x)
    # training=False: the guide's way to keep batch norm in inference mode; freeze_base and
    # unfreeze_from also keep the BN layers untrainable, which survives saving (see module doc).
    x = base_model(x, training=False) if base_inference else base_model(x)
    x = layers.GlobalAveragePooling2D(name="pooling")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    # float32 predictions even under mixed precision: softmax and the loss need the range.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"{spec.name}_transfer")
    if base_inference:
        freeze_base(model)
    return model


def _base_with_weights(spec: BaseSpec, input_size: int, alpha: float | None, weights: str | None) -> keras.Model:
    if weights is None or weights == "none":
        return spec.build(input_size, alpha, None)
    if weights == "imagenet":
        try:
            return spec.build(input_size, alpha, "imagenet")
        except ValueError as err:  # e.g. an alpha with no ImageNet weights
            raise UserError(f"weights 'imagenet' for {spec.name}: {_first_line(err)}") from None
        except Exception as err:  # noqa: BLE001 - keras.utils.get_file raises plain Exception
            raise UserError(f"weights 'imagenet': the Keras download failed ({_first_line(err)}); "
                            "give the weights file instead (--weights PATH or gs://URI) "
                            "or train from scratch (--weights none)") from None
    base_model = spec.build(input_size, alpha, None)
    load_base_weights(base_model, weights, spec)
    return base_model


def load_base_weights(base_model: keras.Model, path: str | Path, spec: BaseSpec) -> None:
    """Load a local weights file into a base; a file of another base or width is one clear line.

    Accepted: ``.weights.h5`` (Keras 3, e.g. what :func:`components.transfer.pretrain.pretrain_on_source`
    saves) and ``.h5`` (Keras' own ImageNet ``..._no_top.h5`` files, for air-gapped clusters).
    """
    path = Path(path)
    if not str(path).endswith(WEIGHT_SUFFIXES):
        raise UserError(f"weights file {path.name}: expected a .weights.h5 or .h5 Keras weights file")
    if not path.is_file():
        raise UserError(f"weights file {path}: no such file")
    try:
        base_model.load_weights(str(path))
    except Exception as err:  # noqa: BLE001 - h5py and Keras raise several kinds
        raise UserError(f"weights file {path.name} does not fit {spec.name} "
                        f"({describe_base(base_model)}): {_first_line(err)}") from None


def describe_base(base_model: keras.Model) -> str:
    params = base_model.count_params()
    return f"{len(base_model.layers)} layers, {params:,} parameters"


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------------ phases

def base_of(model: keras.Model) -> keras.Model:
    return model.get_layer(BASE_LAYER)


def _keep_batch_norm_frozen(base_model: keras.Model) -> None:
    for layer in base_model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def freeze_base(model: keras.Model) -> None:
    """Phase 1: only the head trains."""
    base_of(model).trainable = False


def fine_tune_index(base_model: keras.Model, fine_tune_from: int | str | None, spec: BaseSpec) -> int:
    """The index of the first layer to unfreeze: an index, a layer name, or the base's default."""
    n = len(base_model.layers)
    if fine_tune_from is None:
        return spec.fine_tune_from
    if isinstance(fine_tune_from, str) and not fine_tune_from.lstrip("-").isdigit():
        names = [layer.name for layer in base_model.layers]
        if fine_tune_from not in names:
            raise UserError(f"fine_tune_from={fine_tune_from!r}: no such layer in {spec.constructor}; expected "
                            f"a layer index 0..{n - 1} or a layer name such as {names[spec.fine_tune_from]!r}")
        return names.index(fine_tune_from)
    index = int(fine_tune_from)
    if not 0 <= index < n:
        raise UserError(f"fine_tune_from={index}: expected a layer index 0..{n - 1} of {spec.constructor} "
                        "(or a layer name)")
    return index


def unfreeze_from(model: keras.Model, index: int) -> None:
    """Phase 2: base layers ``index`` and above train, batch norm stays in inference mode."""
    base_model = base_of(model)
    base_model.trainable = True
    for layer in base_model.layers[:index]:
        layer.trainable = False
    _keep_batch_norm_frozen(base_model)


def trainable_count(model: keras.Model) -> int:
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def compile_for_phase(model: keras.Model, learning_rate: float, jit_compile) -> None:
    """Adam at the phase's learning rate, the study's loss and metric."""
    compile_built(model, optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
