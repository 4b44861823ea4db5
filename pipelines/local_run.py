"""Run the pipeline on this machine with kfp.local: no cluster, artifacts under ./runs/."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

from components.errors import UserError
from components.profiles import load_profile


def run_locally(profile: str = "smoke", overrides: list[str] | tuple = (), run_id: str | None = None,
                runs_dir: str = "runs") -> Path:
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
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               raise_on_error=True)
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
