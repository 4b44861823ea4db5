"""Run the pipeline on this machine with kfp.local: no cluster, artifacts under ./runs/."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

from components.errors import UserError
from components.profiles import load_profile

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


def run_locally(profile: str = "smoke", overrides: list[str] | tuple = (), run_id: str | None = None,
                runs_dir: str = "runs", runner: str = "subprocess") -> Path:
    """Run the whole pipeline; return the report's HTML path."""
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
    local.init(runner=make_runner(runner), pipeline_root=str(root), raise_on_error=True)
    print(f"run {run_id}: profile {profile} -> {root}", flush=True)
    started = time.perf_counter()
    try:
        task = study_pipeline(**arguments)
    except RuntimeError as err:
        raise UserError(f"run {run_id} failed: {err} (logs above; artifacts so far in {root})") from None
    # The report folder sits deep in KFP's layout; give it a stable place in the run folder.
    report = root / "report"
    shutil.copytree(Path(task.output.path).parent / "report", report)
    print(f"run {run_id}: finished in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"report: {report / 'report.md'}", flush=True)
    print(f"report (HTML): {report / 'report.html'}", flush=True)
    return report / "report.html"
