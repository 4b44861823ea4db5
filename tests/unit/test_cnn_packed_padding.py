"""A member's variables in a padded program and back (components/cnn/packed/padding.py)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax is not installed: packed trials need Keras' JAX backend")

from components.cnn.packed.padding import cut_array, pad_array  # noqa: E402


def test_a_conv_kernel_sits_in_the_leading_corner_and_the_rest_keeps_the_fill():
    own = np.arange(3 * 3 * 16 * 32, dtype=np.float32).reshape(3, 3, 16, 32) + 1
    fill = np.full((3, 3, 64, 64), 0.1, np.float32)
    padded = pad_array(own, fill, flat=49)
    assert padded.shape == (3, 3, 64, 64) and np.array_equal(padded[:, :, :16, :32], own)
    assert np.all(padded[:, :, 16:] == np.float32(0.1)) and np.all(padded[:, :, :, 32:] == np.float32(0.1))
    assert np.all(fill == np.float32(0.1))  # the fill is copied, never written
    assert np.array_equal(cut_array(padded, own.shape, flat=49), own)


def test_the_dense_layer_after_flatten_is_padded_channel_by_channel():
    """Its rows are (row, column, channel) of a 7 x 7 map: a member's 16 channels are rows 0-15 of each
    position's 64 in the padded program, not the first 784 rows."""
    own = np.random.default_rng(0).random((49 * 16, 5)).astype(np.float32)
    padded = pad_array(own, np.zeros((49 * 64, 5), np.float32), flat=49)
    by_position = padded.reshape(49, 64, 5)
    assert np.array_equal(by_position[:, :16], own.reshape(49, 16, 5)) and not by_position[:, 16:].any()
    assert not np.array_equal(padded[:784], own)
    assert np.array_equal(cut_array(padded, own.shape, flat=49), own)
    same = np.ones((3, 4), np.float32)  # a shape the program shares is the member's as it is
    assert np.array_equal(pad_array(same, np.zeros((3, 4), np.float32), flat=49), same)
