import pytest

from components.cnn.models import build_study_cnn, param_counts
from components.core.errors import UserError


def expected_counts(filters, kernel=(5, 5, 3, 3)):
    """Parameter counts of the study's architecture computed by hand from the layer shapes."""
    trainable, non_trainable, channels = 0, 0, 1
    for f, k in zip(filters, kernel):
        trainable += k * k * channels * f + f  # conv kernel + bias
        trainable += 2 * f  # batch norm gamma, beta
        non_trainable += 2 * f  # batch norm moving mean, variance
        channels = f
    flat = 7 * 7 * filters[3]
    for units_in, units in ((flat, 1024), (1024, 512)):
        trainable += units_in * units + units + 2 * units
        non_trainable += 2 * units
    trainable += 512 * 10 + 10
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def test_seed_cnn_has_the_studys_parameter_counts():
    counts = param_counts(build_study_cnn())
    assert counts == {"total": 3_831_018, "trainable": 3_827_562, "non_trainable": 3_456}


@pytest.mark.parametrize("filters", [(16, 16, 16, 16), (32, 64, 64, 64), (64, 32, 16, 64)])
def test_other_filters_give_the_counts_the_layer_shapes_imply(filters):
    model = build_study_cnn(filters=filters)
    assert param_counts(model) == expected_counts(filters)
    assert model.get_layer("conv4").output.shape == (None, 14, 14, filters[3])
    assert model.get_layer("flatten").output.shape == (None, 7 * 7 * filters[3])
    assert model.output.shape == (None, 10)


def test_activations_are_placed_per_conv_layer_and_do_not_change_counts():
    model = build_study_cnn(activations=("selu", "relu", "elu", "relu"))
    got = [model.get_layer(f"act{i}").get_config()["activation"] for i in range(1, 5)]
    assert got == ["selu", "relu", "elu", "relu"]
    assert param_counts(model)["total"] == 3_831_018


def test_layer_order_matches_the_study():
    kinds = [type(layer).__name__ for layer in build_study_cnn().layers]
    assert kinds == [
        "InputLayer",
        "Conv2D", "BatchNormalization", "Activation", "Conv2D", "BatchNormalization", "Activation",
        "MaxPooling2D", "Dropout",
        "Conv2D", "BatchNormalization", "Activation", "Conv2D", "BatchNormalization", "Activation",
        "MaxPooling2D", "Dropout",
        "Flatten", "Dense", "BatchNormalization", "Activation", "Dense", "BatchNormalization",
        "Activation", "Dropout", "Dense",
    ]


@pytest.mark.parametrize("kwargs, message", [
    ({"activations": ("relu", "relu", "relu")}, "expected 4 values"),
    ({"activations": ("relu", "relu", "relu", "swishy")}, "'swishy' is not an activation"),
    ({"filters": (32, 32, 0, 64)}, "0 is not a positive integer filter count"),
])
def test_bad_settings_are_refused_with_one_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        build_study_cnn(**kwargs)


def test_batch_norm_momentum_is_keras_default_unless_asked_and_changes_no_parameter():
    import keras

    default, short_run = build_study_cnn(), build_study_cnn(bn_momentum=0.9)
    norms = lambda m: [layer for layer in m.layers if isinstance(layer, keras.layers.BatchNormalization)]  # noqa: E731
    assert [n.momentum for n in norms(default)] == [0.99] * 6
    assert [n.momentum for n in norms(short_run)] == [0.9] * 6
    assert param_counts(short_run) == param_counts(default)


def test_a_trial_config_refuses_a_momentum_outside_0_1():
    from components.cnn.hparams import TrialConfig

    assert TrialConfig(bn_momentum=0.9).normalized().bn_momentum == 0.9
    with pytest.raises(UserError, match="bn_momentum=1.0: expected a number between 0 and 1"):
        TrialConfig(bn_momentum=1.0).normalized()
