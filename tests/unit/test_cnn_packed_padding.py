"""A member's variables in a padded program and back (components/cnn/packed/padding.py)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is not installed: packed trials need Keras' JAX backend")

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


# Two members trained side by side in one padded program, and each in a program of its own shape, on 70
# images in batches of 32 (two full steps and a partial one an epoch), three epochs, in float64 and plain
# SGD so that what is left of the difference is rounding. p's padded conv3 channels are sigmoid(0) = 0.5;
# q's drop2 draws over 16 of the program's 64 channels. Prints the largest difference per kind of variable.
#
# Float64 all through, batch norm included: under JAX, Keras' result_type maps float64 to float32 (its
# BIT64_TO_BIT32_DTYPE, "aligned with JAX's default behavior" whether or not x64 is on), so its
# BatchNormalization, which computes in result_type(inputs, float32), ran in float32 with floatx float64.
# The float32 rounding of its sums, whose order XLA picks by the layer's channel count and by its own
# version, was enough to move a value that lay 4e-8 from selu's kink to its other side: after one step a
# member was 9e-6 from its own run, padded or not, and the same network under JAX 0.6.2 and 0.10.2 was 9e-6
# from itself. The script lifts that mapping (a private table: the assert says if a later Keras moves it).
_SIDE_BY_SIDE = """
import jax
jax.config.update("jax_enable_x64", True)
import keras
keras.config.set_floatx("float64")
from keras.src.backend.common import dtypes
dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
assert keras.backend.result_type("float64", "float32") == "float64", "batch norm would still run in float32"
import json, sys
import numpy as np, jax.numpy as jnp
from components.cnn.hparams import TrialConfig
from components.cnn.packed.program import PackProgram
rng = np.random.default_rng(0)
n = 70
x = jnp.asarray(rng.random((n, 28, 28, 1))); y = jnp.asarray(rng.integers(0, 10, n, dtype=np.int32))
configs = [TrialConfig(seed=3, filters=(32, 32, 16, 64), batch_size=32, optimizer="SGD",
                       activations=("relu", "relu", "sigmoid", "relu")),
           TrialConfig(seed=4, filters=(32, 32, 64, 16), batch_size=32, optimizer="SGD",
                       activations=("relu", "elu", "selu", "elu"))]
orders = np.stack([rng.permutation(n) for _ in configs]).astype(np.int32)
pad_layers, choices = json.loads(sys.argv[1]), json.loads(sys.argv[2])
padded = PackProgram(configs, (28, 28, 1), 10, pad_layers=pad_layers, filter_choices=choices)
state = padded.stack([padded.initial_variables(c) for c in configs], configs)
for _ in range(3):
    state, _, _ = padded.train_epoch(state, x, y, orders)
worst = {"trainable": 0.0, "non_trainable": 0.0, "optimizer": 0.0}
for row, config in enumerate(configs):
    own = PackProgram([config], (28, 28, 1), 10)
    alone = own.stack([own.initial_variables(config)], [config])
    for _ in range(3):
        alone, _, _ = own.train_epoch(alone, x, y, orders[row:row + 1])
    ours, theirs = padded.member(state, row, config), own.member(alone, 0, config)
    for kind in worst:
        for a, b in zip(getattr(ours, kind), getattr(theirs, kind), strict=True):
            assert a.shape == b.shape, (kind, a.shape, b.shape)
            worst[kind] = max(worst[kind], float(np.max(np.abs(a - b))) if a.size else 0.0)
print(json.dumps({**worst, "filters": padded.filters}))
"""


@pytest.mark.parametrize(("pad_layers", "choices", "filters"), [
    ((3, 4), (), (32, 32, 64, 64)),  # each padded layer at the members' largest count
    # The pack server's programs: wide enough for any trial of sweep C's grid, so both members are padded
    # in every layer (and drop1 and drop2 switch between the members' own widths and every choice's).
    ((1, 2, 3, 4), (16, 32, 64), (64, 64, 64, 64)),
])
def test_padded_members_end_where_programs_of_their_own_shapes_end(pad_layers, choices, filters):
    """Nine steps with partial batches: every variable (weights, batch-norm statistics, optimizer state) of
    each padded member equals its own-shape run's to 1e-12: float64 rounding (4.4e-16 for the weights and
    6.7e-16 for the batch-norm statistics, on JAX 0.6.2 and 0.10.2 alike). Keras' Dropout over the padded
    channels leaves differences orders larger; in float32 with Nadam even an exact program spreads by up
    to 5e-3 (rare gradients near zero that change sign), which no tolerance could tell from a fault."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.fixtures.packed import jax_env

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", _SIDE_BY_SIDE, json.dumps(pad_layers), json.dumps(choices)],
                          cwd=repo, capture_output=True, text=True, env=jax_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    worst = json.loads(proc.stdout.strip().splitlines()[-1])
    assert tuple(worst.pop("filters")) == filters
    assert set(worst) == {"trainable", "non_trainable", "optimizer"}
    assert all(v < 1e-12 for v in worst.values()), worst
