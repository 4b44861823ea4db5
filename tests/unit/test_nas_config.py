"""components/nas/config.py: the search's settings, from a profile, a KFP input or by hand; no Keras."""

import pytest

from components.core.errors import UserError
from components.nas.config import NasConfig


def test_settings_are_normalised():
    config = NasConfig(block_type=" ResNet ", tuner="Bayesian").normalized()
    assert (config.block_type, config.tuner) == ("resnet", "bayesian")
    assert config.pretrained is False, "no step may download weights unless asked"


@pytest.mark.parametrize("changes, message", [
    ({"block_type": "densenet"}, "block_type='densenet': expected one of resnet, xception, vanilla, efficient"),
    ({"tuner": "grid"}, "tuner='grid': expected one of greedy, bayesian, hyperband, random"),
    ({"max_trials": 0}, "max_trials=0: expected a positive integer"),
    ({"epochs": -1}, "epochs=-1: expected a positive integer"),
    ({"batch_size": 2.5}, "batch_size=2.5: expected a positive integer"),
    ({"train_images": 0}, "train_images=0: expected a positive integer or null"),
    ({"val_split": 1.0}, "val_split=1.0: expected a number between 0 and 1"),
    ({"block_type": "vanilla", "pretrained": True}, "the vanilla block has no pretrained weights"),
])
def test_bad_settings_are_one_clear_line(changes, message):
    with pytest.raises(UserError, match=message) as err:
        NasConfig(**changes).normalized()
    assert "\n" not in str(err.value)


def test_profile_style_dicts_reject_unknown_keys():
    assert NasConfig.from_dict({"block_type": "vanilla", "max_trials": 2}).max_trials == 2
    from_kfp = NasConfig.from_dict({"max_trials": 2.0, "epochs": 1.0, "val_split": 0.2}).normalized()
    assert (from_kfp.max_trials, from_kfp.epochs, from_kfp.val_split) == (2, 1, 0.2)
    with pytest.raises(UserError, match="max_trials=2.5"):
        NasConfig.from_dict({"max_trials": 2.5}).normalized()
    with pytest.raises(UserError, match="^trials: unknown setting; expected one of augment, batch_size, "):
        NasConfig.from_dict({"trials": 2})


@pytest.mark.parametrize("profile", ["smoke", "study"])
def test_profiles_nas_section_is_valid(profile):
    from components.profile_check import load_profile

    settings = load_profile(profile)
    if "nas" not in settings:
        pytest.skip("profiles.yaml has no nas section yet")
    config = NasConfig.from_dict(settings["nas"]).normalized()
    assert config.pretrained is False
    if profile == "study":  # the study's settings
        assert (config.block_type, config.normalize, config.augment) == ("resnet", True, False)
    else:  # a tiny search
        assert (config.block_type, config.max_trials, config.epochs) == ("vanilla", 2, 1)
