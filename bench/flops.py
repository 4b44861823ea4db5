"""Training FLOPs per image of the hand-written CNN, from its layer shapes.

Counted: multiply-adds of the conv and dense layers, 2 FLOPs each (what a GEMM
rate counts). Batch norm, activations, pooling, dropout and the optimizer's
update are left out: together they are well under 1% of the total here, and
they run on the vector units anyway, not at the GEMM rate. Training is taken
as 3 × forward (forward, gradient w.r.t. inputs, gradient w.r.t. weights);
strictly, conv1 needs no input gradient, which makes 3 × forward an
over-count of 1.8% of conv1's share (about 0.6% of the total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TRAINING_FACTOR = 3


def conv2d_flops(out_h: int, out_w: int, out_channels: int, kernel: int, in_channels: int) -> int:
    return 2 * out_h * out_w * out_channels * kernel * kernel * in_channels


def dense_flops(inputs: int, units: int) -> int:
    return 2 * inputs * units


def study_cnn_forward_flops(filters: Sequence[int] = (32, 32, 64, 64), image: int = 28, channels: int = 1,
                           num_classes: int = 10) -> int:
    """Forward FLOPs per image of :func:`components.cnn.models.build_study_cnn` (same padding, two 2×2 pools)."""
    f1, f2, f3, f4 = filters
    half, quarter = image // 2, image // 4
    return (conv2d_flops(image, image, f1, 5, channels)
            + conv2d_flops(image, image, f2, 5, f1)
            + conv2d_flops(half, half, f3, 3, f2)
            + conv2d_flops(half, half, f4, 3, f3)
            + dense_flops(quarter * quarter * f4, 1024)
            + dense_flops(1024, 512)
            + dense_flops(512, num_classes))


def model_forward_flops(model) -> int:
    """Forward FLOPs per image of any built Keras model, read from its Conv2D and Dense layers."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            in_c = layer.input.shape[-1]
            total += 2 * out_h * out_w * out_c * kh * kw * in_c // max(layer.groups, 1)
        elif isinstance(layer, keras.layers.Dense):
            total += dense_flops(math.prod(layer.kernel.shape[:-1]), layer.units)
    return int(total)


def training_flops(forward: int) -> int:
    return TRAINING_FACTOR * forward


def ceiling_images_per_second(gemm_flops_per_second: float, forward_flops: int) -> float:
    """Images/s the machine could train at if every FLOP ran at the GEMM rate."""
    return gemm_flops_per_second / training_flops(forward_flops)


def packed_flops_ratio(packs, pad_layers: Sequence[int]) -> float:
    """Forward FLOPs that the programs of ``packs`` (lists of ``TrialConfig``s sharing a pack key with
    ``pad_layers``; ``components.cnn.packed.members``) run, each at its layers' largest filter counts,
    over their trials' own FLOPs: 1 when nothing is padded."""
    from components.cnn.packed.members import program_filters

    packs = [list(p) for p in packs]
    padded = sum(len(p) * study_cnn_forward_flops(program_filters(p, pad_layers)) for p in packs)
    return padded / sum(study_cnn_forward_flops(c.filters) for p in packs for c in p)


def padding_waste(configs, pad_layers: Sequence[int]) -> float:
    """``packed_flops_ratio`` of the trials ``configs`` in one pack per pack key."""
    from components.cnn.packed.members import pack_key

    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(pack_key(config, pad_layers), []).append(config)
    return packed_flops_ratio(groups.values(), pad_layers)
