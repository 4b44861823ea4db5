"""The Python half of kind_e2e.sh: shrink the Experiment, check what came back, run the pipeline.

Each check is a plain function returning the problems it found (an empty list when all is well),
so the unit tests exercise it without a cluster; ``main`` is the command line the shell script
calls (``python -m tests.e2e.kind_e2e SUBCOMMAND ...`` from the repository root). A failed check
prints one line per problem and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
from pathlib import Path

import yaml

from components.core.settings import OBJECTIVE_METRIC

# The kind overlay's ConfigMap: STORAGE_EMULATOR_HOST and friends, which trial pods need to reach
# the in-cluster GCS emulator.
SETTINGS_CONFIGMAP = "fmstudy-settings"
# A kind node's share for one trial; the generated Experiments ask for 2 CPUs and 6 GiB.
SMALL_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}}
E2E_SUFFIX = "-e2e"
# The pipeline's tasks whose output artifacts must be in the object store after a run
# (KFP names a task after its component function).
PIPELINE_ARTIFACT_TASKS = ("prepare-data", "train-cnn", "evaluate-model", "build-report")

Problems = list[str]


# ---------------------------------------------------------------- the Experiment


def primary_container(experiment: dict) -> dict:
    """The trial Job's container that Katib collects metrics from."""
    template = experiment["spec"]["trialTemplate"]
    containers = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    name = template.get("primaryContainerName")
    for container in containers:
        if container["name"] == name:
            return container
    raise ValueError(f"no container named {name!r} in the trialSpec (primaryContainerName)")


def shrink_experiment(experiment: dict, *, image: str, max_trials: int = 2, epochs: int = 1) -> dict:
    """A copy of a generated Experiment that finishes in minutes on kind.

    ``max_trials`` trials one at a time, one failure allowed, ``epochs`` epochs each, the image kind
    loaded, small requests, and the kind settings (the GCS emulator) in the trial's environment.
    """
    small = copy.deepcopy(experiment)
    small["metadata"]["name"] += E2E_SUFFIX
    spec = small["spec"]
    spec.update(maxTrialCount=max_trials, parallelTrialCount=1, maxFailedTrialCount=1)
    container = primary_container(small)
    command = container["command"]
    if "--epochs" not in command[:-1]:
        raise ValueError("the trial command has no --epochs value to shrink")
    command[command.index("--epochs") + 1] = str(epochs)
    container["image"] = image
    container["imagePullPolicy"] = "IfNotPresent"  # kind loaded it; there is no registry to pull from
    container["resources"] = copy.deepcopy(SMALL_RESOURCES)
    container.setdefault("envFrom", []).append({"configMapRef": {"name": SETTINGS_CONFIGMAP}})
    return small


def categorical_values(experiment: dict) -> dict[str, list[str]]:
    """{parameter: its list} for the Experiment's list-valued parameters."""
    return {p["name"]: list(p["feasibleSpace"]["list"])
            for p in experiment["spec"]["parameters"] if "list" in p.get("feasibleSpace", {})}


def check_launch_outputs(outputs: dict, experiment: dict) -> Problems:
    """What ``study katib launch --outputs-json`` wrote for the shrunken Experiment, checked."""
    problems = []
    spec = experiment["spec"]
    if outputs.get("condition") != "Succeeded":
        problems.append(f"the Experiment ended {outputs.get('condition')!r} ({outputs.get('reason')}: "
                        f"{outputs.get('message')}), expected 'Succeeded'")
    succeeded = (outputs.get("trials") or {}).get("succeeded", 0)
    if succeeded != spec["maxTrialCount"]:
        problems.append(f"{succeeded} trials succeeded, expected {spec['maxTrialCount']}")
    if outputs.get("objective") != OBJECTIVE_METRIC:
        problems.append(f"objective {outputs.get('objective')!r}, expected {OBJECTIVE_METRIC!r}")
    value = outputs.get("objective_value")
    if not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        problems.append(f"the optimal trial's {OBJECTIVE_METRIC} is {value!r}, expected a value in (0, 1]")
    assignments = outputs.get("assignments") or {}
    for name, allowed in categorical_values(experiment).items():
        if assignments.get(name) not in allowed:
            problems.append(f"the optimal trial's {name}={assignments.get(name)!r} is not one of {allowed}")
    if not (outputs.get("optimal_trial") or {}).get("bestTrialName"):
        problems.append("status.currentOptimalTrial has no bestTrialName")
    return problems


# ---------------------------------------------------------------- the pipeline


def check_pipeline_run(run: dict) -> Problems:
    """A finished KFP v2 run (``V2beta1Run.to_dict()``): it and every task succeeded."""
    problems = []
    if run.get("state") != "SUCCEEDED":
        problems.append(f"run {run.get('run_id')} ended {run.get('state')!r}, expected 'SUCCEEDED': "
                        f"{(run.get('error') or {}).get('message', 'no error message')}")
    tasks = ((run.get("run_details") or {}).get("task_details")) or []
    for task in tasks:
        if task.get("state") in ("FAILED", "CANCELED"):
            problems.append(f"task {task.get('display_name')!r} {task['state']} (pod {task.get('pod_name')})")
    return problems


def check_artifact_listing(listing: str, run_id: str) -> Problems:
    """The object store's file list for the run holds an artifact of every task that writes one."""
    paths = [line.strip() for line in listing.splitlines() if run_id in line]
    if not paths:
        return [f"no artifact of run {run_id} in the object store"]
    return [f"no artifact of task {task!r} in run {run_id}'s folder"
            for task in PIPELINE_ARTIFACT_TASKS if not any(f"/{task}/" in path for path in paths)]


def run_pipeline(host: str, package: str, run_name: str, timeout_s: int) -> dict:
    """Submit the compiled pipeline to KFP at ``host``, wait for it to finish, return the run as a dict."""
    import kfp

    # stdout carries only the run id (the shell script reads it); the client's own chatter goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        client = kfp.Client(host=host)
        submitted = client.create_run_from_pipeline_package(package, arguments={}, run_name=run_name,
                                                            experiment_name="fmstudy-e2e", enable_caching=False)
        print(f"e2e: pipeline run {submitted.run_id} submitted", flush=True)
        return client.wait_for_run_completion(submitted.run_id, timeout=timeout_s).to_dict()


# ---------------------------------------------------------------- command line


def _report(problems: Problems, ok: str) -> int:
    for problem in problems:
        print(f"e2e: {problem}", file=sys.stderr)
    if not problems:
        print(f"e2e: {ok}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.kind_e2e", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("shrink", help="write the shrunken Experiment")
    p.add_argument("experiment")
    p.add_argument("--image", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("check-katib", help="check `study katib launch --outputs-json` against the Experiment")
    p.add_argument("outputs")
    p.add_argument("experiment")
    p = sub.add_parser("run-pipeline", help="submit, wait, check; print the run id")
    p.add_argument("package")
    p.add_argument("--host", required=True)
    p.add_argument("--run-name", default="fmstudy-e2e")
    p.add_argument("--timeout", type=int, default=3600, help="seconds")
    p = sub.add_parser("check-artifacts", help="check a `find` listing of the object store for the run")
    p.add_argument("listing")
    p.add_argument("run_id")
    args = parser.parse_args(argv)

    if args.command == "shrink":
        from katib.validate import check_experiment

        small = shrink_experiment(yaml.safe_load(Path(args.experiment).read_text()), image=args.image)
        check_experiment(small)
        Path(args.out).write_text(yaml.safe_dump(small, sort_keys=False))
        return 0
    if args.command == "check-katib":
        outputs = json.loads(Path(args.outputs).read_text())
        experiment = yaml.safe_load(Path(args.experiment).read_text())
        return _report(check_launch_outputs(outputs, experiment),
                       f"Katib's optimal trial: {outputs.get('assignments')} "
                       f"{OBJECTIVE_METRIC}={outputs.get('objective_value')}")
    if args.command == "run-pipeline":
        run = run_pipeline(args.host, args.package, args.run_name, args.timeout)
        print(run["run_id"])
        return _report(check_pipeline_run(run), f"pipeline run {run['run_id']} succeeded")
    listing = Path(args.listing).read_text()
    return _report(check_artifact_listing(listing, args.run_id), f"artifacts of run {args.run_id} stored")


if __name__ == "__main__":
    sys.exit(main())
