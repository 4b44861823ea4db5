"""`study katib launch`: its flags, and the run that launches one Experiment file."""

from __future__ import annotations

import argparse
import json
import re

from katib.backends.cluster.lifecycle import DEFAULT_POLL_S, DEFAULT_TIMEOUT_S, ON_STOP_CHOICES, launch_experiment
from katib.backends.cluster.status import Log
from katib.validate import load_experiment


def parse_duration(text: str) -> float:
    """Seconds from '3600', '90s', '45m' or '6h'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive duration such as 3600, 90m or 6h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="a Katib v1beta1 Experiment YAML file (katib/experiments/*.yaml)")
    parser.add_argument("--namespace", default=None, help="create it here instead of its metadata.namespace")
    parser.add_argument("--timeout", type=parse_duration, default=DEFAULT_TIMEOUT_S, metavar="DURATION",
                        help="how long to wait for it to finish: seconds, or 90m, 6h (default 6h)")
    parser.add_argument("--poll", type=parse_duration, default=DEFAULT_POLL_S, metavar="SECONDS",
                        help="seconds between status reads when the API server's watch is unavailable (default 10)")
    parser.add_argument("--delete", action="store_true", help="delete the Experiment and its trials once it ends")
    parser.add_argument("--on-stop", choices=ON_STOP_CHOICES, default="keep",
                        help="on timeout, Katib's Failed or SIGTERM: keep the Experiment running or delete it "
                             "(default keep)")
    parser.add_argument("--replace", action="store_true",
                        help="delete an existing Experiment of the same name first (else one with the same spec "
                             "is waited on, and one with another spec is an error)")
    parser.add_argument("--outputs-json", default=None, metavar="PATH",
                        help="write the best trial (assignments, optimal_trial, settings) as JSON: a path or gs://")


def run_from_args(args: argparse.Namespace, log: Log = print) -> int:
    """Launch the Experiment in ``args.experiment``; print (and optionally write) its best trial."""
    experiment = load_experiment(args.experiment)
    result = launch_experiment(experiment, namespace=args.namespace, timeout_s=args.timeout, poll_s=args.poll,
                               delete_after=args.delete, replace_existing=args.replace, log=log,
                               on_stop=args.on_stop)
    if args.outputs_json:
        from components.core import storage

        storage.write_text(args.outputs_json, json.dumps(result.outputs(), indent=2) + "\n")
    best = " ".join(f"{k}={v}" for k, v in result.assignments.items())
    value = f"; {result.objective}={result.objective_value:.4f}" if result.objective_value is not None else ""
    log(f"katib: {result.namespace}/{result.name} {result.condition} ({result.reason}): {best}{value}")
    return 0
