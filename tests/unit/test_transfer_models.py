"""The transfer-learning models: the study's head, both phases' trainable layers, weights."""

import math

import keras
import numpy as np
import pytest

from components.core.errors import UserError
from components.transfer.models import (
    BASES,
    NO_AUGMENTATION,
    Augmentation,
    base_of,
    build_transfer_model,
    fine_tune_index,
    freeze_base,
    load_base_weights,
    preprocessing_layer,
    trainable_count,
    unfreeze_from,
)
from components.transfer.settings import TransferSettings

STUDY_LAYERS = ["InputLayer", "Sequential", "Rescaling", "Functional", "GlobalAveragePooling2D", "Dropout", "Dense"]


def size(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def gamma_beta(layers) -> int:
    """How many gamma and beta weights these layers' batch norms have (InceptionV3's have no gamma)."""
    return sum(layer.moving_mean.shape[0] * (int(layer.scale) + int(layer.center)) for layer in layers
               if isinstance(layer, keras.layers.BatchNormalization))


@pytest.fixture(scope="module")
def mobilenet():
    return build_transfer_model("mobilenet_v2", 5, input_size=32, seed=1)


@pytest.fixture(scope="module")
def inception():
    return build_transfer_model("inception_v3", 5, input_size=75, seed=1)


@pytest.mark.parametrize("fixture, base_channels", [("mobilenet", 1280), ("inception", 2048)])
def test_both_bases_have_the_studys_head_in_order(request, fixture, base_channels):
    model = request.getfixturevalue(fixture)
    assert [type(layer).__name__ for layer in model.layers] == STUDY_LAYERS
    assert [layer.name for layer in model.layers] == [
        "image", "augmentation", "preprocessing", "base", "pooling", "dropout", "predictions"]
    assert [type(layer).__name__ for layer in model.get_layer("augmentation").layers] == [
        "RandomFlip", "RandomRotation"]
    assert model.get_layer("dropout").rate == 0.4
    head = model.get_layer("predictions")
    assert head.units == 5 and head.get_config()["activation"] == "softmax"
    assert model.get_layer("base").output.shape[-1] == base_channels
    assert model.output.shape == (None, 5)


@pytest.mark.parametrize("fixture, base_channels, fine_tune_from, study_unfrozen, expected_fine_tune", [
    # 1,861,440: MobileNetV2's layers 100+ in the TensorFlow transfer-learning tutorial (1,862,721
    # trainable with its 1-unit head), batch norm gamma/beta included.
    ("mobilenet", 1280, 100, 1_861_440, 1_846_021),
    # 11,114,880: InceptionV3 after mixed8 (the keras.applications fine-tuning example's 249).
    ("inception", 2048, 249, 11_114_880, 11_118_597),
])
def test_trainable_parameters_of_both_phases(request, fixture, base_channels, fine_tune_from, study_unfrozen,
                                             expected_fine_tune):
    model = request.getfixturevalue(fixture)
    head = base_channels * 5 + 5
    base = base_of(model)
    # Phase 1: the base is frozen, only the dense head trains.
    freeze_base(model)
    assert trainable_count(model) == head
    assert not base.trainable_weights
    # Phase 2: layers from fine_tune_from on train, except batch norm, kept in inference mode. The
    # study's count includes batch norm's gamma/beta above that layer; ours leaves them frozen.
    unfreeze_from(model, fine_tune_from)
    assert trainable_count(model) == study_unfrozen - gamma_beta(base.layers[fine_tune_from:]) + head \
        == expected_fine_tune
    assert all(not layer.trainable_weights for layer in base.layers[:fine_tune_from])
    assert all(layer.trainable for layer in base.layers[fine_tune_from:]
               if not isinstance(layer, keras.layers.BatchNormalization))
    assert all(not layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert model.count_params() == base.count_params() + head


def test_batch_norm_stays_in_inference_mode_through_fine_tuning_and_a_save(tmp_path):
    model = build_transfer_model("mobilenet_v2", 3, input_size=32, alpha=0.35, seed=1)
    unfreeze_from(model, 100)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", jit_compile=False)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32"), rng.integers(0, 3, 16)

    def snapshot(m):
        base = base_of(m)
        bn = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in base.layers
              if isinstance(layer, keras.layers.BatchNormalization)}
        return bn, base.get_layer("Conv1").kernel.numpy().copy(), base.get_layer("Conv_1").kernel.numpy().copy()

    bn, below, above = snapshot(model)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    bn_after, below_after, above_after = snapshot(model)
    assert all(np.array_equal(bn[k][i], bn_after[k][i]) for k in bn for i in range(len(bn[k])))
    assert np.array_equal(below, below_after)  # layer 0..99: frozen
    assert not np.array_equal(above, above_after)  # Conv_1 is above layer 100: fine-tuned

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    bn, _, above = snapshot(loaded)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    bn_after, _, above_after = snapshot(loaded)
    assert all(np.array_equal(bn[k][i], bn_after[k][i]) for k in bn for i in range(len(bn[k])))
    assert not np.array_equal(above, above_after)


@pytest.mark.parametrize("base, module", [("mobilenet_v2", keras.applications.mobilenet_v2),
                                          ("inception_v3", keras.applications.inception_v3)])
def test_preprocessing_layer_is_the_bases_own_preprocess_input(base, module):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    ours = np.asarray(preprocessing_layer(BASES[base])(x))
    np.testing.assert_allclose(ours, module.preprocess_input(x.copy()), atol=1e-5)


@pytest.mark.parametrize("base, size, minimum", [("mobilenet_v2", 31, 32), ("inception_v3", 74, 75)])
def test_input_size_below_the_bases_minimum_is_refused(base, size, minimum):
    with pytest.raises(UserError, match=rf"input_size={size}: .* at least {minimum}x{minimum} pixels"):
        build_transfer_model(base, 5, input_size=size)
    with pytest.raises(UserError, match=f"at least {minimum}x{minimum}"):
        TransferSettings(base=base, input_size=size).checked()


def test_smallest_sizes_build():
    assert build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35).input.shape == (None, 32, 32, 3)


def test_fine_tune_from_by_index_or_name_and_bad_values(mobilenet):
    base, spec = base_of(mobilenet), BASES["mobilenet_v2"]
    assert fine_tune_index(base, None, spec) == 100
    assert fine_tune_index(base, "block_11_expand", spec) == 98
    assert fine_tune_index(base, 120, spec) == 120
    with pytest.raises(UserError, match=r"fine_tune_from=154: expected a layer index 0\.\.153"):
        fine_tune_index(base, 154, spec)
    with pytest.raises(UserError, match="fine_tune_from='block_99': no such layer in MobileNetV2"):
        fine_tune_index(base, "block_99", spec)


def test_no_augmentation_leaves_the_layer_out():
    model = build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35, augmentation=NO_AUGMENTATION)
    assert [layer.name for layer in model.layers][:3] == ["image", "preprocessing", "base"]
    zoomed = build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35,
                                  augmentation=Augmentation(flip="vertical", rotation=0.0, zoom=0.2))
    assert [type(layer).__name__ for layer in zoomed.get_layer("augmentation").layers] == ["RandomFlip", "RandomZoom"]


# ----------------------------------------------------------------------- weights

@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "mobilenet_035.weights.h5"
    keras.utils.set_random_seed(3)
    base_of(build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35)).save_weights(str(path))
    return path


def test_weights_load_from_a_file(mobilenet_weights):
    expected = keras.applications.MobileNetV2(input_shape=(48, 48, 3), include_top=False, weights=None, alpha=0.35)
    expected.load_weights(str(mobilenet_weights))
    model = build_transfer_model("mobilenet_v2", 4, input_size=48, alpha=0.35, weights=str(mobilenet_weights))
    for ours, theirs in zip(base_of(model).weights, expected.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("base, size, alpha", [("mobilenet_v2", 32, 1.0), ("inception_v3", 75, None)])
def test_a_weights_file_of_another_base_or_width_is_refused(mobilenet_weights, base, size, alpha):
    with pytest.raises(UserError, match=f"weights file mobilenet_035.weights.h5 does not fit {base}"):
        build_transfer_model(base, 2, input_size=size, alpha=alpha, weights=str(mobilenet_weights))


def test_weights_file_name_and_presence_are_checked(tmp_path):
    model = build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35)
    with pytest.raises(UserError, match="expected a .weights.h5 or .h5 Keras weights file"):
        load_base_weights(base_of(model), tmp_path / "w.bin", BASES["mobilenet_v2"])
    with pytest.raises(UserError, match="no such file"):
        load_base_weights(base_of(model), tmp_path / "missing.weights.h5", BASES["mobilenet_v2"])
    (tmp_path / "junk.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="junk.weights.h5 does not fit mobilenet_v2"):
        load_base_weights(base_of(model), tmp_path / "junk.weights.h5", BASES["mobilenet_v2"])


def test_imagenet_download_failure_is_one_line_with_the_alternatives(monkeypatch):
    from keras.src.utils import file_utils  # what keras.applications calls to download

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(UserError) as err:
        build_transfer_model("mobilenet_v2", 2, input_size=96, weights="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("weights 'imagenet': the Keras download failed (URL fetch failure")
    assert "--weights PATH or gs://URI" in message and "--weights none" in message
