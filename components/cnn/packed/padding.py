"""Members of different filter counts in one program, each training exactly its own network.

A pack made with ``pad_layers`` (``members.pack_key``) runs its program at each conv layer's
largest filter count. A member with fewer filters in a layer sits in the first channels; the
others are held at zero:

* Its variables go in at the program's shapes with the padded part of every weight zero (the dense
  layer after ``flatten`` takes its rows per (row, column, channel) of the feature map, so its
  channels are padded in place). Batch-norm statistics and optimizer slots are padded with the
  program's own initial values (Ftrl's accumulators start at 0.1, not 0).
* A padded channel's convolution is then 0 for every image; batch norm turns a channel that is 0
  throughout into 0, and whatever its activation makes of that meets zero weights in the next layer.
  So the member's own channels compute what its own network computes, up to the order of the sums.
* Each step masks the gradients of the padded weights to zero and keeps those weights as they were
  (a ``where`` on the update), so no optimizer moves them.
* ``Dropout`` draws its mask over its input's shape, so over padded channels it would draw a
  different mask, and the member would train a different dropout stream from its own network's.
  ``PaddedDropout`` draws each member's mask over its own channels, with the one seed that the layer
  draws per call, as Keras' ``Dropout`` does: bit for bit the member's own masks.

What is saved (checkpoints, ``model.keras``) is the member's own variables, cut back to its shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import keras
import numpy as np


def pad_array(own: np.ndarray, fill: np.ndarray, flat: int) -> np.ndarray:
    """``own`` placed in a copy of ``fill`` (the program's shape): in the leading corner, or for the
    dense layer after ``flatten`` (2-D, its rows ``flat`` positions × channels), channel by channel."""
    own, out = np.asarray(own), np.array(fill, copy=True)
    if own.shape == out.shape:
        return own.astype(out.dtype)
    if own.ndim == 2 and own.shape[1] == out.shape[1]:
        out.reshape(flat, -1, out.shape[1])[:, :own.shape[0] // flat] = own.reshape(flat, -1, own.shape[1])
        return out
    out[tuple(slice(0, n) for n in own.shape)] = own
    return out


def cut_array(padded: np.ndarray, shape: tuple[int, ...], flat: int) -> np.ndarray:
    """``pad_array``'s inverse: the member's own ``shape`` out of the program's array."""
    padded = np.asarray(padded)
    if padded.shape == tuple(shape):
        return padded
    if padded.ndim == 2 and padded.shape[1] == shape[1]:
        return padded.reshape(flat, -1, shape[1])[:, :shape[0] // flat].reshape(shape)
    return padded[tuple(slice(0, n) for n in shape)]


def flat_positions(model: keras.Model) -> int:
    """Positions per channel of the study CNN's flattened feature map (7 × 7 = 49 on 28 × 28 images)."""
    return math.prod(model.get_layer("flatten").input.shape[1:-1])


def dropout_widths(model: keras.Model) -> dict[str, int]:
    """Each ``Dropout`` layer's input channels."""
    return {layer.name: int(layer.input.shape[-1]) for layer in model.layers
            if isinstance(layer, keras.layers.Dropout)}


class PaddedDropout:
    """A ``Dropout`` layer's ``call`` over padded channels (see the module docstring): ``widths`` are
    the members' own channel counts, ``code`` the member's index into them (set before each call)."""

    def __init__(self, layer: keras.layers.Dropout, widths: Sequence[int]):
        if layer.noise_shape is not None:
            raise ValueError(f"{layer.name}: a noise_shape cannot be padded")
        self.layer, self.widths, self.code = layer, tuple(widths), None

    def __call__(self, inputs, training=False):
        if not training or self.layer.rate <= 0:
            return inputs
        seed = self.layer.seed_generator.next()  # one draw per call, as Dropout's own
        width = inputs.shape[-1]

        def own(width_own):
            def branch(x):
                kept = keras.random.dropout(x[..., :width_own], self.layer.rate, seed=seed)
                return jnp.pad(kept, [(0, 0)] * (x.ndim - 1) + [(0, width - width_own)])
            return branch

        return jax.lax.switch(self.code, [own(w) for w in self.widths], inputs)


class OwnShapes(NamedTuple):
    """What a member's own network is made of, besides its values."""

    trainable: list[tuple[int, ...]]
    non_trainable: list[tuple[int, ...]]
    optimizer: list[tuple[int, ...]]
    dropout_widths: dict[str, int]  # each Dropout layer's input channels
    params: dict[str, int]  # its parameter counts, as ``models.param_counts`` gives them


class Padding:
    """How members' own variables sit in one program's padded ones: ``model`` and ``optimizer`` are the
    program's (built), ``build(config)`` builds a member's own model."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, build):
        self.flat = flat_positions(model)
        self.build = build
        self.fill_trainable = [np.zeros(v.shape, v.dtype) for v in model.trainable_variables]
        self.fill_non_trainable = [np.asarray(v.value) for v in model.non_trainable_variables]
        self.fill_optimizer = [np.asarray(v.value) for v in optimizer.variables]
        self._own: dict[tuple[int, ...], tuple] = {}

    def own_model(self, config) -> tuple[keras.Model, keras.optimizers.Optimizer]:
        """The member's own model (its weights from Keras' random state: seed it first for the seed's)
        and its optimizer, built on it."""
        from components.cnn.train import make_optimizer

        model = self.build(config)
        optimizer = make_optimizer(config.optimizer, config.learning_rate)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def shapes(self, config) -> OwnShapes:
        """The member's own shapes, dropout widths and parameter counts (one build per filter counts)."""
        from components.cnn.models import param_counts

        key = tuple(config.filters)
        if key not in self._own:
            model, optimizer = self.own_model(config)
            self._own[key] = OwnShapes([tuple(v.shape) for v in model.trainable_variables],
                                       [tuple(v.shape) for v in model.non_trainable_variables],
                                       [tuple(v.shape) for v in optimizer.variables], dropout_widths(model),
                                       param_counts(model))
        return self._own[key]

    def pad(self, variables):
        """A member's own variables (``program.MemberVariables``) at the program's shapes."""
        pad = lambda own, fills: [pad_array(a, f, self.flat) for a, f in zip(own, fills, strict=True)]  # noqa: E731
        return type(variables)(pad(variables.trainable, self.fill_trainable),
                               pad(variables.non_trainable, self.fill_non_trainable),
                               pad(variables.optimizer, self.fill_optimizer))

    def cut(self, variables, config):
        """``pad``'s inverse: the member's own variables out of the program's."""
        own = self.shapes(config)

        def cut(arrays, shapes):
            return [cut_array(a, s, self.flat) for a, s in zip(arrays, shapes, strict=True)]

        return type(variables)(cut(variables.trainable, own.trainable),
                               cut(variables.non_trainable, own.non_trainable), cut(variables.optimizer, own.optimizer))

    def masks(self, config) -> list[np.ndarray]:
        """True where a trainable entry is the member's own, False where it is padding."""
        return [pad_array(np.ones(s, bool), np.zeros(f.shape, bool), self.flat)
                for s, f in zip(self.shapes(config).trainable, self.fill_trainable, strict=True)]
