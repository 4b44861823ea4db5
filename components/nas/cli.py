"""``study nas``: its flags, and the handler that runs the search (or previews its first model)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from components.core.argtypes import optional_float, optional_int
from components.core.config import from_mapping
from components.core.errors import UserError
from components.core.settings import OBJECTIVE_METRIC
from components.nas.automodel import preview_first_trial
from components.nas.config import BLOCK_TYPES, TUNERS, NasConfig
from components.nas.export import describe_model, model_summary_text
from components.nas.search import run_nas


def _bool(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``study nas``."""
    d = NasConfig()
    parser.add_argument("--data", required=True, help="dataset artifact (folder or gs://)")
    parser.add_argument("--output", default=None,
                        help="output folder or gs:// URI (required unless --preview); "
                             "started again on it, the search resumes")
    parser.add_argument("--search-dir", default=None,
                        help="where the KerasTuner project lives (default: OUTPUT/search); a distributed "
                             "search needs a folder the chief and every worker share")
    parser.add_argument("--block-type", default=d.block_type, help=f"one of {', '.join(BLOCK_TYPES)}")
    parser.add_argument("--normalize", type=_bool, default=d.normalize, metavar="true|false",
                        help="ImageBlock's normalization (false: let the search choose)")
    parser.add_argument("--augment", type=_bool, default=d.augment, metavar="true|false",
                        help="ImageBlock's augmentation (false: let the search choose)")
    parser.add_argument("--pretrained", type=_bool, default=d.pretrained, metavar="true|false",
                        help="ImageNet weights (downloads them); default false")
    parser.add_argument("--tuner", default=d.tuner, help=f"one of {', '.join(TUNERS)}")
    parser.add_argument("--max-trials", type=int, default=d.max_trials, help="models the search tries")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs per trial")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="images per training step")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed of the tuner and the training")
    parser.add_argument("--train-images", type=optional_int, default=d.train_images,
                        help="a stratified subset of the training split (default: all)")
    parser.add_argument("--val-split", type=optional_float, default=d.val_split,
                        help="carve this fraction of training images for validation "
                             "(default: the artifact's validation split)")
    parser.add_argument("--preview", action="store_true",
                        help="build the first trial's model, print its summary and parameters, train nothing")


def config_from_args(args: argparse.Namespace) -> NasConfig:
    """The flags' settings, built by the same converter as a profile's and checked."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(NasConfig)}
    return from_mapping(NasConfig, values).normalized()


def run_from_args(args: argparse.Namespace) -> int:
    """The ``study nas`` handler: progress on stderr, the outcome's one line on stdout."""
    config = config_from_args(args)  # checked before Keras loads
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.preview:
        model, values = preview_first_trial(config, args.data)
        description = describe_model(model)
        print(model_summary_text(description), end="")
        print(json.dumps({"hyperparameters": values, **description["params"]}))
        return 0
    if not args.output:
        raise UserError("--output: expected an output folder or gs:// URI")
    result = run_nas(config, args.data, args.output, search_uri=args.search_dir, log=log)
    if "test_accuracy" in result:
        print(f"nas: test_accuracy={result['test_accuracy']:.4f} params={result['params']['total']} "
              f"best_{OBJECTIVE_METRIC}={result['best_trial'][OBJECTIVE_METRIC]:.4f}")
    else:
        print(f"nas: worker {result['tuner_id']} ran trials {','.join(result['trials']) or 'none'}")
    return 0
