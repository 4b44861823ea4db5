"""Where a transfer run trains: mixed precision builds float16 layers with float32 predictions."""

import keras
import numpy as np

from components.transfer.devices import precision
from components.transfer.models import base_of, build_transfer_model


def test_mixed_precision_keeps_the_predictions_in_float32():
    with precision("on", gpu=False) as mixed:
        assert mixed
        model = build_transfer_model("mobilenet_v2", 3, input_size=32, alpha=0.35)
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert base_of(model).get_layer("Conv1").compute_dtype == "float16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"
    with precision("auto", gpu=False) as mixed:
        assert not mixed
