"""``study transfer {run,pretrain,image-folder}``: thin commands over the transfer step's functions.

Building the parsers imports no Keras (the study CLI builds a subcommand's flags at start-up);
the flags' help texts come from the bases' definitions.
"""

from __future__ import annotations

import argparse
import sys

from components.core import storage
from components.core.argtypes import comma_list, optional_float, optional_int
from components.core.keras_load import load_keras
from components.transfer.bases import BASES, describe_fine_tune_defaults, describe_minimum_sizes
from components.transfer.data import CACHE_MODES, TARGET_CLASSES
from components.transfer.settings import SETTING_NAMES, SWITCHES, TransferSettings


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    d = TransferSettings()
    p.add_argument("--base", required=True, help=f"one of {', '.join(BASES)}")
    p.add_argument("--input-size", type=int, default=d.input_size,
                   help=f"image side in pixels ({describe_minimum_sizes()}; default: the base's, "
                        + ", ".join(f"{s.input_size} for {s.constructor}" for s in BASES.values()) + ")")
    p.add_argument("--alpha", type=optional_float, default=d.alpha, help="MobileNetV2 width multiplier")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout rate before the softmax head")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per training step")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of the training")
    p.add_argument("--mixed-precision", choices=SWITCHES, default=d.mixed_precision, help="auto: on a GPU")
    p.add_argument("--xla", choices=SWITCHES, default=d.xla, help="auto: on a GPU")
    p.add_argument("--source-classes", type=comma_list(int), default=d.source_classes,
                   help="Fashion-MNIST classes of the pretraining task, comma-separated")
    p.add_argument("--source-images", type=optional_int, default=d.source_images,
                   help="training images drawn for pretraining (default: all)")
    p.add_argument("--source-epochs", type=int, default=d.source_epochs, help="pretraining epochs")
    p.add_argument("--source-learning-rate", type=float, default=d.source_learning_rate,
                   help="pretraining learning rate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``transfer`` subcommands: run, pretrain, image-folder."""
    d = TransferSettings()
    sub = parser.add_subparsers(dest="transfer_command", required=True)

    p = sub.add_parser("run", help="frozen base, then fine-tuning, for one base")
    p.add_argument("--data", required=True, help="image folder (one sub-folder per class; local or gs://) "
                   "or a dataset artifact of study data")
    p.add_argument("--out", required=True, help="run folder or gs:// URI; resumes if it has a checkpoint")
    p.add_argument("--weights", required=True, help="imagenet (downloads), none, source (pretrain here on "
                   "--source-data), or a .weights.h5/.h5 file path or gs:// URI")
    p.add_argument("--source-data", default=None, help="dataset artifact for --weights source")
    _add_model_arguments(p)
    p.add_argument("--flip", default=d.flip, help="horizontal, vertical, horizontal_and_vertical or none")
    p.add_argument("--rotation", type=float, default=d.rotation, help="fraction of a full turn; 0: off")
    p.add_argument("--zoom", type=float, default=d.zoom, help="fraction of the side; 0: off")
    p.add_argument("--frozen-epochs", type=int, default=d.frozen_epochs, help="epochs with the base frozen")
    p.add_argument("--fine-tune-epochs", type=int, default=d.fine_tune_epochs,
                   help="epochs with the top of the base unfrozen")
    p.add_argument("--fine-tune-from", default=None, help="first base layer to unfreeze: index or name "
                   f"(default: {describe_fine_tune_defaults()})")
    p.add_argument("--frozen-learning-rate", type=float, default=d.frozen_learning_rate,
                   help="learning rate of the frozen phase")
    p.add_argument("--fine-tune-learning-rate", type=float, default=d.fine_tune_learning_rate,
                   help="learning rate of the fine-tuning phase")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of an image folder for validation")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help="share of an image folder for test")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="random seed of the image folder's split")
    p.add_argument("--classes", type=comma_list(int), default=None, help="a dataset artifact's classes to use")
    p.add_argument("--cache", choices=CACHE_MODES, default=d.cache, help="where decoded images are kept while training")
    p.set_defaults(transfer_func=_cmd_run)

    p = sub.add_parser("pretrain", help="train a base from scratch on a source task; save its weights")
    p.add_argument("--data", required=True, help="dataset artifact of study data")
    p.add_argument("--out", required=True, help="folder for base.weights.h5 and source.json")
    _add_model_arguments(p)
    p.set_defaults(transfer_func=_cmd_pretrain)

    p = sub.add_parser("image-folder", help="write Fashion-MNIST classes as an image folder of PNG files")
    p.add_argument("--data", required=True, help="dataset artifact of study data")
    p.add_argument("--out", required=True, help="image folder to write (local or gs://), one sub-folder per class")
    p.add_argument("--classes", type=comma_list(int), default=TARGET_CLASSES,
                   help="Fashion-MNIST classes, comma-separated")
    p.add_argument("--images-per-class", type=optional_int, default=None, help="default: all")
    p.add_argument("--seed", type=int, default=42, help="random seed of the images drawn")
    p.set_defaults(transfer_func=_cmd_image_folder)


def _settings_from_args(args, **extra) -> TransferSettings:
    names = SETTING_NAMES & set(vars(args))
    return TransferSettings(**{n: getattr(args, n) for n in names}, **extra)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cmd_run(args) -> None:
    settings = _settings_from_args(args)  # checked before Keras loads
    load_keras()
    from components.transfer.training import run_transfer

    metrics = run_transfer(settings, args.data, args.out, source_data_uri=args.source_data, log=_log)
    after = metrics["val_accuracy_finetuned"]
    print(f"transfer {metrics['base']}: val_accuracy_frozen={metrics['val_accuracy_frozen']:.4f} "
          f"val_accuracy_finetuned={'—' if after is None else f'{after:.4f}'} "
          f"test_accuracy={metrics['test_accuracy']:.4f} -> {args.out}")


def _cmd_pretrain(args) -> None:
    settings = _settings_from_args(args)  # checked before Keras loads
    load_keras()
    from components.transfer.pretrain import SOURCE_WEIGHTS, pretrain_on_source

    record = pretrain_on_source(settings, args.data, args.out, log=_log)
    print(f"pretrain {record['base']}: val_accuracy={record['val_accuracy']:.4f} -> "
          f"{storage.join(args.out, SOURCE_WEIGHTS)}")


def _cmd_image_folder(args) -> None:
    from components.transfer.data import write_image_folder

    record = write_image_folder(args.data, args.out, classes=args.classes,
                                images_per_class=args.images_per_class, seed=args.seed)
    print(f"image folder: {record['images']:,} images in {len(record['class_counts'])} classes -> {args.out}")


def run_from_args(args) -> int:
    args.transfer_func(args)
    return 0
