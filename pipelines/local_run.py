"""Run the pipeline on this machine with kfp.local: no cluster, artifacts under ./runs/."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import TextIO

from components.core.errors import UserError
from components.profile_check import load_profile

RUNNERS = ("subprocess", "docker")


def make_runner(name: str):
    """kfp.local's runner: steps as subprocesses of this Python, or as containers of the trainer image."""
    from kfp import local

    if name == "subprocess":
        return local.SubprocessRunner(use_venv=False)
    if name == "docker":
        return local.DockerRunner(
            # KFP's command starts with `sh -c`; the image's entrypoint (`study`) would swallow it.
            entrypoint=["env"],
            # Write the bind-mounted run folder as its owner, not as the image's user.
            user=f"{os.getuid()}:{os.getgid()}",
            # The steps need nothing from outside: data and code are in the image and the run folder.
            network_disabled=True,
        )
    raise UserError(f"runner {name!r}: expected one of {', '.join(RUNNERS)}")


LOG_FILE = "kfp-local.log"


def pipeline_steps(pipeline) -> list[str]:
    """The pipeline's tasks, each after the ones it depends on (ties by name); a loop
    (``dsl.ParallelFor``) stands for the tasks inside it, which is what kfp.local logs."""
    spec = pipeline.pipeline_spec
    tasks = spec.root.dag.tasks
    ordered: list[str] = []
    while len(ordered) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in ordered and set(t.dependent_tasks) <= set(ordered))
        ordered.append(ready[0])
    return [inner for name in ordered for inner in _loop_tasks(spec, tasks[name]) or [name]]


def loop_iterations(pipeline) -> dict[str, int]:
    """Each task inside a loop over a fixed list: how many iterations kfp.local runs of it."""
    spec = pipeline.pipeline_spec
    counts = {}
    for task in spec.root.dag.tasks.values():
        if task.WhichOneof("iterator") == "parameter_iterator" and task.parameter_iterator.items.raw:
            items = len(json.loads(task.parameter_iterator.items.raw))
            counts.update({inner: items for inner in _loop_tasks(spec, task)})
    return counts


def _loop_tasks(spec, task) -> list[str]:
    if task.WhichOneof("iterator") is None:
        return []
    return sorted(spec.components[task.component_ref.name].dag.tasks)


def sweep_totals(pipeline, settings: dict) -> dict[str, int]:
    """Trials each sweep task will run: its stage's max_trials, at most the grid."""
    from components.sweeps import get_sweep

    limits = settings["sweeps"].get("max_trials") or {}
    totals = {}
    for name, task in pipeline.pipeline_spec.root.dag.tasks.items():
        stage = task.inputs.parameters.get("stage")
        if stage is not None and stage.HasField("runtime_value"):
            grid = get_sweep(stage.runtime_value.constant.string_value).grid_size
            totals[name] = min(limits.get(stage.runtime_value.constant.string_value) or grid, grid)
    return totals


@contextlib.contextmanager
def progress_view(log_path: Path, progress, out: TextIO):
    """kfp.local's output to ``log_path``; progress to ``out`` (live on a terminal, plain lines elsewhere)."""
    from pipelines.console import LogTee

    live = None
    with open(log_path, "a", encoding="utf-8") as log:
        if out.isatty():
            from rich.console import Console
            from rich.live import Live

            live = Live(console=Console(file=out), get_renderable=progress.renderable, refresh_per_second=4,
                        redirect_stdout=False, redirect_stderr=False)

            def on_line(line: str) -> None:
                progress.feed(line)
        else:
            def on_line(line: str) -> None:
                for event in progress.feed(line):
                    print(event, file=out, flush=True)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = LogTee(log, on_line)
        try:
            if live is not None:
                live.start()
            yield
        finally:
            sys.stdout, sys.stderr = saved
            if live is not None:
                live.stop()


@contextlib.contextmanager
def kfp_local_globals():
    """Put back what kfp.local 2.17 patches per task and, with a loop's iterations running at once,
    leaves behind: ``builtins.print`` (``logging_utils.indented_print`` saves and restores it per task,
    so two tasks at once restore each other's indenting version) and the root logger's handlers."""
    import builtins
    import logging

    root = logging.getLogger()
    saved = builtins.print, root.handlers[:], root.level
    try:
        yield
    finally:
        builtins.print = saved[0]
        root.handlers[:] = saved[1]
        root.setLevel(saved[2])


def run_locally(profile: str = "smoke", overrides: list[str] | tuple = (), run_id: str | None = None,
                runs_dir: str = "runs", runner: str = "subprocess", verbose: bool = False) -> Path:
    """Run the whole pipeline; return the report's HTML path.

    kfp.local's own log goes to ``<run folder>/kfp-local.log`` and the console shows progress;
    ``verbose`` shows the log itself, Python warnings included, as it is written.
    """
    from kfp import local

    from pipelines.study_pipeline import pipeline_arguments, study_pipeline

    settings = load_profile(profile, overrides)
    arguments = pipeline_arguments(settings)
    run_id = run_id or f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    root = Path(runs_dir, run_id).resolve()
    if root.exists():
        raise UserError(f"run folder {root} exists already: choose another --run-id")
    root.mkdir(parents=True)
    # The cluster image name is not a "python" image; locally the image is ignored anyway.
    warnings.filterwarnings("ignore", message=".*non-Python base image.*")
    if not verbose:  # in this process and in every step's (kfp.local passes the environment on)
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"
    local.init(runner=make_runner(runner), pipeline_root=str(root), raise_on_error=True)
    log_path = root / LOG_FILE
    print(f"run {run_id}: profile {profile} -> {root}", flush=True)
    if not verbose:
        print(f"run {run_id}: kfp.local's log: {log_path}", flush=True)
    started = time.perf_counter()
    from pipelines.console import Progress

    epochs = {"train-cnn": int(settings["train"]["epochs"])}
    totals = sweep_totals(study_pipeline, settings)
    epochs.update({name: int(settings["sweeps"]["epochs"]) for name in totals})
    progress = Progress(pipeline_steps(study_pipeline), totals, epochs, iterations=loop_iterations(study_pipeline))
    view = contextlib.nullcontext() if verbose else progress_view(log_path, progress, sys.stdout)
    try:
        with kfp_local_globals(), view:
            task = study_pipeline(**arguments)
    except RuntimeError as err:
        if verbose:
            raise UserError(f"run {run_id} failed: {err} (logs above; artifacts so far in {root})") from None
        step = progress.failing_step()
        if step is not None:
            print(f"step {step.name} failed; its last {len(step.lines)} lines:", file=sys.stderr)
            for line in step.lines:
                print(f"  {line}", file=sys.stderr)
        raise UserError(f"run {run_id} failed{f' at step {step.name}' if step else ''}: see {log_path} "
                        f"(artifacts so far in {root})") from None
    # The report folder sits deep in KFP's layout; give it a stable place in the run folder.
    report = root / "report"
    shutil.copytree(Path(task.output.path).parent / "report", report)
    print(f"run {run_id}: finished in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"report: {report / 'report.md'}", flush=True)
    print(f"report (HTML): {report / 'report.html'}", flush=True)
    return report / "report.html"
