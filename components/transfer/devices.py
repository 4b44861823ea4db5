"""Where a transfer run trains: a GPU if the Keras backend sees one, mixed precision and XLA there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def gpu_available() -> bool:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return False


def switch(mode: str, gpu: bool) -> bool:
    """``on``, ``off``, or ``auto``: on a GPU."""
    return mode == "on" or (mode == "auto" and gpu)


def jit_compile(mode: str, gpu: bool):
    """Keras' own choice (XLA where it can) on a GPU; off on a CPU, where compiling costs more than it saves."""
    return "auto" if switch(mode, gpu) else False


@contextlib.contextmanager
def precision(mode: str, gpu: bool) -> Iterator[bool]:
    """Mixed float16 while building and training on a GPU (``auto``); the global policy is restored."""
    import keras

    use = switch(mode, gpu)
    previous = keras.config.dtype_policy()
    if use:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield use
    finally:
        keras.config.set_dtype_policy(previous)
