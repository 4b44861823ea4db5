"""components/nas/cli.py: `study nas`'s flags build the checked settings; no Keras."""

import argparse

import pytest

from components.nas.cli import add_arguments, config_from_args


def test_command_line_flags_build_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "d", "--output", "o", "--block-type", "xception", "--normalize", "false",
                              "--augment", "yes", "--tuner", "random", "--max-trials", "5", "--train-images", "all",
                              "--val-split", "0.2"])
    config = config_from_args(args)
    assert (config.block_type, config.normalize, config.augment, config.tuner) == ("xception", False, True, "random")
    assert (config.max_trials, config.train_images, config.val_split) == (5, None, 0.2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--normalize", "maybe"])
