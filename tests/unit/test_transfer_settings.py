"""The transfer settings: one clear line for a bad value, per-base settings from a profile section."""

import pytest

from components.core.errors import UserError
from components.transfer.settings import TransferSettings, settings_from_profile


@pytest.mark.parametrize("kwargs, message", [
    ({"base": "resnet50"}, "base 'resnet50': expected one of mobilenet_v2, inception_v3"),
    ({"base": "inception_v3", "input_size": 75, "alpha": 0.5}, "only MobileNet bases have a width multiplier"),
    ({"flip": "sideways"}, "flip='sideways': expected one of"),
    ({"rotation": 1.5}, "rotation=1.5"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"frozen_epochs": 0}, "frozen_epochs=0: expected a positive integer"),
    ({"fine_tune_epochs": -1}, "fine_tune_epochs=-1: expected a non-negative integer"),
    ({"fine_tune_learning_rate": 0}, "fine_tune_learning_rate=0"),
    ({"val_fraction": 0.6, "test_fraction": 0.4}, "leaves no training images"),
    ({"weights": "imagenet21k"}, "weights 'imagenet21k': expected imagenet, none, source, or a .weights.h5"),
    ({"mixed_precision": "yes"}, "mixed_precision='yes'"),
])
def test_bad_settings_are_one_clear_line(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        TransferSettings(**kwargs).checked()


def test_profile_section_gives_per_base_settings():
    section = {
        "target": {"classes": [5, 6, 7, 8, 9], "images_per_class": 200, "seed": 42},
        "weights": "source", "frozen_epochs": 5.0, "fine_tune_epochs": 3, "batch_size": 32,
        "source": {"classes": [0.0, 1.0, 2.0, 3.0, 4.0], "epochs": 3, "learning_rate": 0.002},
        "bases": {"mobilenet_v2": {"input_size": 64.0, "alpha": 0.35},
                  "inception_v3": {"input_size": 75, "source_images": 900, "source_epochs": 2}},
    }
    mobilenet = settings_from_profile(section, "mobilenet_v2").checked()
    assert (mobilenet.input_size, mobilenet.alpha, mobilenet.source_epochs) == (64, 0.35, 3)
    assert mobilenet.frozen_epochs == 5 and isinstance(mobilenet.frozen_epochs, int)
    assert mobilenet.source_classes == (0, 1, 2, 3, 4)
    inception = settings_from_profile(section, "inception_v3").checked()
    assert (inception.input_size, inception.alpha) == (75, None)
    assert (inception.source_images, inception.source_epochs) == (900, 2)
    with pytest.raises(UserError, match="transfer settings learning_rate: unknown"):
        settings_from_profile({"learning_rate": 0.1}, "mobilenet_v2")


def test_the_converter_types_every_value_and_a_meaningful_range_names_a_bad_one():
    """KFP hands a dict parameter's numbers over as floats; the converter makes them what the fields say."""
    settings = settings_from_profile({"frozen_epochs": 2.0, "classes": [5.0, 7.0], "alpha": 1,
                                      "fine_tune_from": 120.0}, "mobilenet_v2").checked()
    assert (settings.frozen_epochs, settings.classes, settings.alpha, settings.fine_tune_from) == (2, (5, 7), 1.0, 120)
    assert settings.input_size == 224  # the base's own, from its definition
    assert TransferSettings(fine_tune_from="98").checked().fine_tune_from == 98
    with pytest.raises(UserError, match=r"^dropout='abc': expected a rate from 0 to below 1$"):
        settings_from_profile({"dropout": "abc"}, "mobilenet_v2")
    with pytest.raises(UserError, match=r"^classes='x': expected an integer$"):
        settings_from_profile({"classes": "5,x"}, "mobilenet_v2")
    with pytest.raises(UserError, match=r"^frozen_epochs=2\.5: expected a positive integer$"):
        settings_from_profile({"frozen_epochs": 2.5}, "mobilenet_v2")
