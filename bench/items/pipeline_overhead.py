"""Item 7: the smoke pipeline's kfp.local wall time minus its steps' own work, split into starting step
processes (interpreter, kfp's executor, imports) and kfp.local with the `study run` driver."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from bench.items.common import Context, as_number, as_percent, new_result
from bench.probe import REPO
from bench.timeline import hook_environment, processes, read_events, step_processes


def item_pipeline_overhead(ctx: Context) -> dict:
    r = new_result(7, "pipeline_overhead", "Pipeline overhead: kfp.local wall time minus the steps' own work")
    s = ctx.sizes
    root = ctx.work / "pipeline"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    timeline = root / "timeline.jsonl"
    run_id = "bench"
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--profile", s["pipeline_profile"], "--runs-dir",
           str(root / "runs"), "--run-id", run_id]
    for item in s["pipeline_set"] or []:
        cmd += ["--set", item]
    env = {**os.environ, **hook_environment(timeline), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log_path = root / "pipeline.log"
    ctx.log(f"pipeline: {' '.join(cmd[1:])} (log {log_path})")
    started = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    ended = time.time()
    r["settings"] = {"profile": s["pipeline_profile"], "overrides": list(s["pipeline_set"] or []),
                     "runner": "kfp.local SubprocessRunner"}
    if proc.returncode != 0:
        r["status"] = "failed"
        r["notes"].append(f"the pipeline exited {proc.returncode}; see {log_path}")
        return r
    procs = processes(read_events(timeline))
    steps = step_processes(procs)
    total = ended - started
    work = sum(p.top_level_work() for p in steps)
    rows, step_rows = [], []
    for p in steps:
        names = sorted({c["fn"].rsplit(".", 1)[-1] for c in p.calls if c["depth"] == 0})
        component = p.arg("--function_to_execute") or "?"
        wall = p.wall
        step_rows.append({"component": component, "functions": names, "process_wall_s": wall,
                          "work_s": p.top_level_work()})
        rows.append([f"{component} ({', '.join(names) or 'no recorded call'})", as_number(wall, 1),
                     as_number(p.top_level_work(), 1),
                     as_number(None if wall is None else wall - p.top_level_work(), 1)])
    in_steps = sum((x["process_wall_s"] or 0) - x["work_s"] for x in step_rows)
    orchestration = total - sum(x["process_wall_s"] or 0 for x in step_rows)
    rows.append(["**whole pipeline**", as_number(total, 1), as_number(work, 1), as_number(total - work, 1)])
    r["results"] = {"wall_s": total, "steps_work_s": work, "overhead_s": total - work,
                    "overhead_share": (total - work) / total, "in_step_processes_s": in_steps,
                    "orchestration_s": orchestration, "steps": step_rows}
    r["table"] = {"columns": ["step (its calls into components/, katib/)", "process wall s", "own work s",
                              "overhead s"], "rows": rows}
    r["headline"] = (f"{total - work:,.1f} s of {total:,.1f} s ({as_percent((total - work) / total)}) is not the "
                     f"steps' own work: {in_steps:,.1f} s starting step processes and importing, "
                     f"{orchestration:,.1f} s kfp.local and the driver")
    r["target"] = {"text": "(no target: measured)", "met": None}
    r["notes"].append("Own work = time inside the component's outermost calls into the step modules of "
                      "components/ and katib.sweep (prepare_dataset, run_trial, evaluate_model, run_sweep_stage, the "
                      "report functions, ...), recorded by bench/hook/sitecustomize.py in each step process; trial "
                      "processes started by a sweep step count as that step's work. Overhead in step processes = "
                      "interpreter start, kfp's executor, imports; the rest is kfp.local and the `study run` driver.")
    return r

