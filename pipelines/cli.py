"""``study``: the command line. Each subcommand parses flags and calls one plain function.

Heavy libraries (Keras, KFP) are imported inside the handlers so that a
Katib trial or ``study --help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields

from components.core.argtypes import comma_list, optional_int
from components.core.errors import TrialDiverged, UserError

EXIT_USER_ERROR = 2


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each flag's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else "%(default)s"
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit status 2 like every other bad input."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _stage_uri(text: str) -> str:
    from components.sweeps import SWEEPS

    stage, sep, uri = text.partition("=")
    if not sep or stage not in SWEEPS or not uri:
        raise argparse.ArgumentTypeError(f"{text!r}: expected STAGE=FOLDER with STAGE one of {', '.join(SWEEPS)}")
    return text


def _setting(text: str) -> str:
    from components.sweeps import swept_settings

    names = swept_settings()
    name, sep, value = text.partition("=")
    if not sep or name not in names or not value:
        listed = ", ".join(f"{n}=..." for n in names[:-1])
        raise argparse.ArgumentTypeError(f"{text!r}: expected {f'{listed} or ' if listed else ''}{names[-1]}=...")
    return text


# --------------------------------------------------------------------- handlers

def cmd_data(args) -> None:
    from components.data import DataSettings, prepare_dataset

    meta = prepare_dataset(DataSettings(source=args.source, val_fraction=args.val_fraction,
                                        train_size=args.train_size, test_size=args.test_size,
                                        seed=args.seed), args.out)
    print(f"data: {meta['counts']} from {meta['source']} -> {args.out}")


def cmd_train(args) -> int | None:
    from components.cnn.hparams import TrialConfig

    config = TrialConfig(optimizer=args.optimizer, learning_rate=args.learning_rate,
                         activations=args.activations, filters=args.filters, epochs=args.epochs,
                         batch_size=args.batch_size, seed=args.seed, bn_momentum=args.bn_momentum,
                         train_images=args.train_images).normalized()  # before Keras loads
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731 - stdout is for metrics
    from components.cnn.packed.client import pack_server, run_in_pack

    server = pack_server()
    if server:  # the sweep trains its trials in packs: this process hands the trial over (no Keras here)
        return run_in_pack(server, config, args.data, args.output, args.warm_start, log)
    from components.core.keras_load import load_keras

    load_keras()
    from components.cnn.train import run_trial

    metrics = run_trial(config, args.data, args.output, log=log, warm_start=args.warm_start)
    # No "name=value" here: Katib's StdOut collector reads stderr too and its default filter
    # would record this line as one more observation (see settings.KATIB_DEFAULT_METRICS_FILTER).
    log(f"trial: done; best val_accuracy {metrics['best']['val_accuracy']:.4f} at epoch "
        f"{metrics['best']['epoch']} -> {args.output}")


def cmd_evaluate(args) -> None:
    from components.core.keras_load import load_keras

    load_keras()
    from components.evaluate import evaluate_model

    result = evaluate_model(args.model, args.data, args.out)
    print(f"evaluate: test_accuracy={result['test_accuracy']:.4f} test_loss={result['test_loss']:.4f}")


def cmd_report(args) -> None:
    from components.report.document import study_sections
    from components.report.render import write_report

    sections = study_sections(args.data, args.model, args.evaluation, nas_uri=args.nas,
                              sweep_uris=dict(item.split("=", 1) for item in args.sweep),
                              transfer_uris=dict(item.split("=", 1) for item in args.transfer))
    paths = write_report(sections, args.out)
    print(f"report: {paths['markdown']}")


def cmd_run(args) -> None:
    from pipelines.local_run import run_locally

    run_locally(profile=args.profile, overrides=args.set, run_id=args.run_id, runs_dir=args.runs_dir,
                runner=args.runner, verbose=args.verbose)


def cmd_compile(args) -> None:
    from pipelines.compile import run_from_args

    run_from_args(args)


def cmd_katib_generate(args) -> None:
    from pathlib import Path

    from components.profile_check import load_profile
    from katib.experiments import write_cluster_experiments

    for path in write_cluster_experiments(load_profile(args.profile, args.set), Path(args.out)):
        print(path)


def cmd_katib_validate(args) -> None:
    from katib.validate import check_experiment, load_experiment, unchecked_parts

    for path in args.files:
        experiment = load_experiment(path)
        check_experiment(experiment)
        unseen = unchecked_parts(experiment)
        print(f"{path}: not checked: {'; '.join(unseen)} (not visible here); the rest is valid" if unseen
              else f"{path}: valid")


def cmd_sweep_run(args) -> int:
    from pathlib import Path

    from katib.backends.local import run_experiment
    from katib.sweep import trial_environment
    from katib.validate import check_experiment, inline_trial_template, load_experiment

    experiment = load_experiment(args.experiment)
    if args.trial_template:
        experiment = inline_trial_template(experiment, args.trial_template)
    check_experiment(experiment)  # every problem listed, nothing run
    run_dir = Path(args.run_dir or Path("runs", "sweeps", experiment["metadata"]["name"]))
    result = run_experiment(experiment, run_dir, extra_env=trial_environment())
    print(f"sweep: {result.condition} ({result.reason}); results in {run_dir}")
    if not result.succeeded:
        print(f"error: experiment {result.name} failed: {result.message or result.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_sweep_stage(args) -> None:
    from components.profile_check import load_profile
    from components.sweeps import get_sweep
    from katib.sweep import run_sweep_stage

    fixed = dict(item.split("=", 1) for item in args.fixed)
    summary = run_sweep_stage(args.stage, args.data, args.out, load_profile(args.profile, args.set)["sweeps"], fixed)
    print(f"sweep {args.stage}: best {summary['best'][get_sweep(args.stage).setting]} (index {summary['best_index']}) "
          f"val_accuracy={summary['val_accuracy']:.4f} -> {args.out}")


def cmd_katib_launch(args) -> int:
    from katib.backends.cluster import run_from_args

    return run_from_args(args)


def cmd_nas(args) -> int:
    from components.nas import run_from_args

    return run_from_args(args)


def cmd_transfer(args) -> int:
    from components.transfer.cli import run_from_args

    return run_from_args(args)


def cmd_profile(args) -> None:
    from components.profile_check import load_profile

    print(json.dumps(load_profile(args.name, args.set), indent=2))


# ---------------------------------------------------------------------- parser

SET_HELP = "override one profile value, YAML-typed (repeatable), e.g. train.epochs=3 or data.train_size=null"


def _sweep_stages() -> dict[str, int]:
    """Each sweep's name and grid size, in chain order."""
    from components.sweeps import SWEEPS

    return {name: sweep.grid_size for name, sweep in SWEEPS.items()}


def _profile_list() -> str:
    """The profiles in components/core/profiles.yaml with their descriptions (YAML only: fast)."""
    import yaml

    from components.core.profiles import PROFILES_FILE

    profiles = yaml.safe_load(PROFILES_FILE.read_text())
    return "\n".join(f"  {name:8} {body.get('description', '')}" for name, body in profiles.items())

def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``command`` only that subcommand's flags filled in: the others'
    flags need imports (kfp, the launcher, NAS, transfer) that a Katib trial's ``study train``
    must not pay for. Their names and help lines are always there, for ``study --help``."""
    def wanted(name: str) -> bool:
        return command in (None, name)

    from components.cnn.hparams import OPTIMIZERS, STUDY_ACTIVATIONS, STUDY_FILTERS, TrialConfig

    defaults = {f.name: f.default for f in fields(TrialConfig)}
    parser = _Parser(prog="study", description="The Fashion-MNIST study: each step, trial and sweep as one "
                     "command (what the pipeline's steps and Katib's trials run).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("data", help="load, check and split Fashion-MNIST into a dataset artifact")
    data = {}
    if wanted("data"):  # components.data loads numpy and the storage clients: not for a trial
        from components.data import DataSettings

        data = {f.name: f.default for f in fields(DataSettings)}
    p.add_argument("--source", help="folder or gs:// prefix with the four IDX files (.gz or raw); "
                   "default: Debian's dataset-fashion-mnist, then the Keras download")
    p.add_argument("--out", required=True, help="artifact folder or gs:// URI")
    p.add_argument("--val-fraction", type=float, default=data.get("val_fraction"),
                   help="share of the training images kept for validation")
    p.add_argument("--train-size", type=optional_int, default=None, help="stratified subset of the 60,000")
    p.add_argument("--test-size", type=optional_int, default=None, help="stratified subset of the 10,000")
    p.add_argument("--seed", type=int, default=data.get("seed"), help="random seed of the split and the subsets")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="one training run of the hand-written CNN (the Katib trial)")
    p.add_argument("--data", required=True, help="dataset artifact (folder or gs://)")
    p.add_argument("--output", required=True, help="trial output folder or gs:// URI; resumes if it has a checkpoint")
    p.add_argument("--optimizer", default=defaults["optimizer"], help=f"one of {', '.join(OPTIMIZERS)}")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the optimizer's Keras default")
    p.add_argument("--activations", type=comma_list(str), default=STUDY_ACTIVATIONS,
                   help="4 values, e.g. selu,relu,relu,relu")
    p.add_argument("--filters", type=comma_list(int), default=STUDY_FILTERS, help="4 values, e.g. 32,64,64,64")
    p.add_argument("--epochs", type=int, default=defaults["epochs"],
                   help="epochs in all (a resumed trial runs the rest)")
    p.add_argument("--batch-size", type=int, default=defaults["batch_size"], help="images per training step")
    p.add_argument("--seed", type=int, default=defaults["seed"], help="random seed: weights, shuffling, dropout")
    p.add_argument("--bn-momentum", type=float, default=defaults["bn_momentum"],
                   help="batch norm's moving-average momentum, between 0 and 1 "
                        "(default: %(default)s, Keras' and the study's)")
    p.add_argument("--train-images", type=optional_int, default=None,
                   help="train on a stratified subset of this many training images, the same for every "
                        "trial of a seed (default: all of them)")
    p.add_argument("--warm-start", default=None, metavar="FOLDER",
                   help="population based training (Katib's pbt, its suggestion_trial_dir): start from the "
                        "weights a parent trial left in FOLDER, if any, and leave this trial's there")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy, per-class accuracy, confusion matrix, curves")
    p.add_argument("--model", required=True, help="trial output folder (with model.keras)")
    p.add_argument("--data", required=True, help="dataset artifact whose test split is scored")
    p.add_argument("--out", required=True, help="folder for metrics.json and the figures")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="the study report (Markdown + HTML)")
    p.add_argument("--data", required=True, help="dataset artifact")
    p.add_argument("--model", required=True, help="the hand-written CNN's trial output folder")
    p.add_argument("--evaluation", required=True, help="study evaluate's output folder")
    p.add_argument("--sweep", action="append", default=[], type=_stage_uri, metavar="STAGE=FOLDER",
                   help="a sweep's output folder, e.g. optimizer=runs/x/sweeps/optimizer (repeatable)")
    p.add_argument("--nas", default=None, help="the AutoKeras search's output folder (with nas.json)")
    p.add_argument("--transfer", action="append", default=[], metavar="BASE=FOLDER",
                   help="a transfer run's output folder, e.g. mobilenet_v2=runs/x/mobilenet_v2 (repeatable)")
    p.add_argument("--out", required=True, help="folder for report.md, report.html and the figures")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="run the whole pipeline on this machine with kfp.local",
                       description="Run the whole pipeline on this machine with kfp.local.\n\nprofiles:\n"
                       + _profile_list())
    p.add_argument("--profile", default="smoke", help="one of the profiles listed above")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=SET_HELP)
    p.add_argument("--run-id", default=None, help="name of the run folder (default: profile + time)")
    p.add_argument("--runs-dir", default="runs", help="folder that holds the run folders")
    p.add_argument("--runner", default="subprocess", choices=["subprocess", "docker"],
                   help="subprocess: steps as processes of this Python; docker: every step in a container of the "
                        "trainer image (build it first with make images)")
    p.add_argument("--verbose", action="store_true",
                   help="show kfp.local's log and Python warnings as they come, instead of the progress view "
                        "(the log is always in the run folder: kfp-local.log)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML for a cluster")
    if wanted("compile"):
        from pipelines.compile import add_arguments as add_compile_arguments  # kfp loads on use

        add_compile_arguments(p)
    p.set_defaults(func=cmd_compile)

    katib = sub.add_parser("katib", help="Katib Experiments: generate the study's manifests, validate any")
    katib_sub = katib.add_subparsers(dest="katib_command", required=True, parser_class=_Parser)
    p = katib_sub.add_parser("generate", help="write each sweep's Experiment YAML (CPU and gpu/)")
    p.add_argument("--profile", default="study", help="the profile whose sweeps section sizes the trials")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=SET_HELP)
    p.add_argument("--out", default="katib/experiments", help="folder for the YAML files")
    p.set_defaults(func=cmd_katib_generate)
    p = katib_sub.add_parser("validate", help="check Experiments as Katib's admission webhook would")
    p.add_argument("files", nargs="+", help="Experiment YAML files")
    p.set_defaults(func=cmd_katib_validate)
    p = katib_sub.add_parser("launch", help="create an Experiment on the cluster, wait, print its best trial")
    if wanted("katib"):
        from katib.backends.cluster import add_arguments as add_launch_arguments  # kubernetes loads on use

        add_launch_arguments(p)
    p.set_defaults(func=cmd_katib_launch)

    sweep = sub.add_parser("sweep", help="run a Katib Experiment on this machine (the local Katib backend)")
    sweep_sub = sweep.add_subparsers(dest="sweep_command", required=True, parser_class=_Parser)
    p = sweep_sub.add_parser("run", help="run EXPERIMENT.yaml's trials as local processes; resumes in its run folder")
    p.add_argument("experiment", help="a Katib v1beta1 Experiment YAML file")
    p.add_argument("--run-dir", default=None, help="default: runs/sweeps/<experiment name>")
    p.add_argument("--trial-template", default=None, metavar="FILE",
                   help="the trial template a configMap trialTemplate names: its ConfigMap manifest, or the trial's "
                        "resource YAML")
    p.set_defaults(func=cmd_sweep_run)
    # The study's sweeps (components/sweeps.py), read only where these flags are parsed or shown.
    stages = _sweep_stages() if wanted("sweep") else {}
    p = sweep_sub.add_parser(
        "stage", help="one of the study's sweeps on this machine",
        description="One of the study's sweeps on this machine: "
                    + ", ".join(f"{name} ({size} trials)" for name, size in stages.items())
                    + ".\n\nTo cut trials: --set sweeps.max_trials.STAGE=N runs N grid points "
                    "(the profile's default: see study profile); --set sweeps.epochs=N shortens each trial; "
                    "--set sweeps.early_stopping=true stops weak trials early (Katib's medianstop).\n\nTo search "
                    "otherwise: --set sweeps.algorithm=hyperband (epochs are its resource) or "
                    "--set sweeps.algorithm=pbt (trials warm-start from their parents), as Katib runs them.")
    p.add_argument("stage", choices=list(stages) or None, help="which sweep")
    p.add_argument("--data", required=True, help="dataset artifact")
    p.add_argument("--out", required=True, help="run folder: experiment.yaml, trials, results, summary.json")
    p.add_argument("--fixed", action="append", default=[], type=_setting, metavar="SETTING=VALUE",
                   help="settings held fixed (what the earlier sweeps found), e.g. optimizer=Nadam or "
                        "activations=selu,relu,relu,relu")
    p.add_argument("--profile", default="smoke", help="the profile whose sweeps section sizes the trials")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=SET_HELP)
    p.set_defaults(func=cmd_sweep_stage)

    p = sub.add_parser("nas", help="the AutoKeras architecture search (resumes on the same output; "
                       "KerasTuner chief or worker from the KERASTUNER_* variables)")
    if wanted("nas"):
        from components.nas import add_arguments as add_nas_arguments  # Keras loads on use

        add_nas_arguments(p)
    p.set_defaults(func=cmd_nas)

    p = sub.add_parser("transfer", help="transfer learning (Question 3): run a base, pretrain on a source task, "
                       "write an image folder")
    if wanted("transfer"):
        from components.transfer.cli import add_arguments as add_transfer_arguments  # Keras loads on use

        add_transfer_arguments(p)
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("profile", help="print a profile with overrides applied",
                       description="Print a profile with overrides applied, checked as study run checks it."
                                   "\n\nprofiles:\n" + _profile_list())
    p.add_argument("name", nargs="?", default="smoke", help="profile name (default: smoke)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=SET_HELP)
    p.set_defaults(func=cmd_profile)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    try:
        status = args.func(args)
    except UserError as err:
        for line in str(err).splitlines() or [""]:  # several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        return err.exit_code
    except TrialDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
