"""The study's hand-written CNN (Question 1 part A), in Keras 3 only.

Two conv blocks (5x5 then 3x3), each conv followed by batch norm and its own
activation, then a dense head. The four conv activations and filter counts
are arguments because Question 2's sweeps vary exactly those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from components.cnn.hparams import STUDY_ACTIVATIONS, STUDY_FILTERS, check_conv_settings


def build_study_cnn(activations: Sequence[str] = STUDY_ACTIVATIONS,
                    filters: Sequence[int] = STUDY_FILTERS,
                    input_shape: tuple[int, int, int] = (28, 28, 1),
                    num_classes: int = 10, bn_momentum: float = 0.99) -> keras.Model:
    """The study's CNN: 3,831,018 parameters with its default settings (bn_momentum: Keras' default)."""
    activations, filters = check_conv_settings(activations, filters)
    a1, a2, a3, a4 = activations
    f1, f2, f3, f4 = filters

    inputs = keras.Input(shape=input_shape, name="image")
    # Block 1: 5x5 kernels see whole strokes of a 28x28 garment.
    x = layers.Conv2D(f1, 5, padding="same", kernel_initializer="he_uniform", name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn1")(x)
    x = layers.Activation(a1, name="act1")(x)
    x = layers.Conv2D(f2, 5, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn2")(x)
    x = layers.Activation(a2, name="act2")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Dropout(0.3, name="drop1")(x)
    # Block 2: 3x3 kernels on the 14x14 maps.
    x = layers.Conv2D(f3, 3, padding="same", name="conv3")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn3")(x)
    x = layers.Activation(a3, name="act3")(x)
    x = layers.Conv2D(f4, 3, padding="same", name="conv4")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn4")(x)
    x = layers.Activation(a4, name="act4")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Dropout(0.3, name="drop2")(x)
    # Head: the dense layers hold ~96% of the parameters (7*7*64 -> 1024).
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, name="dense1")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn5")(x)
    x = layers.Activation("relu", name="act5")(x)
    x = layers.Dense(512, name="dense2")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="bn6")(x)
    x = layers.Activation("relu", name="act6")(x)
    x = layers.Dropout(0.2, name="drop3")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="study_cnn")


def param_counts(model: keras.Model) -> dict[str, int]:
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable,
            "non_trainable": non_trainable}
