"""The progress view of `study run`, fed the lines kfp.local and the local Katib backend print.

The task lines are kfp.local 2.17's own format (kfp/local/logging_utils.py: task names in
cyan, statuses in green/red, behind `HH:MM:SS.fff - LEVEL - `); the trial lines are what
katib/backends/local/runner.py logs for each trial.
"""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.console import ANSI, LogTee, Progress

CYAN, GREEN, RED, RESET = "\033[96m", "\033[92m", "\033[91m", "\033[0m"


def kfp_task(name: str, status: str | None = None) -> str:
    if status is None:
        return f"10:00:00.001 - INFO - Executing task {CYAN}'{name}'{RESET}"
    color = GREEN if status == "SUCCESS" else RED
    level = "INFO" if status == "SUCCESS" else "ERROR"
    return f"10:00:09.002 - {level} - Task {CYAN}'{name}'{RESET} finished with status {color}{status}{RESET}"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_steps_sweeps_and_epochs_become_plain_events():
    clock = Clock()
    progress = Progress(["prepare-data", "run-sweep"], {"run-sweep": 4}, {"run-sweep": 2}, clock=clock)
    events = []
    for line, advance in [
        (kfp_task("prepare-data"), 0), ("data: wrote runs/x/data", 5), (kfp_task("prepare-data", "SUCCESS"), 0),
        (kfp_task("run-sweep"), 0), ("[opt-a1b2] started: optimizer=Adam", 0),
        ("[opt-a1b2] epoch=1 accuracy=0.7 loss=0.8 val_accuracy=0.71 val_loss=0.8", 30),
        ("[opt-a1b2] Succeeded val_accuracy=0.8123: Trial has succeeded", 30),
        ("[opt-c3d4] started: optimizer=Ftrl", 0),
        ("[opt-c3d4] Succeeded val_accuracy=0.1: Trial has succeeded", 60),
    ]:
        clock.now += advance
        events += progress.feed(line)
    assert events == [
        "step prepare-data: running",
        "step prepare-data: succeeded in 5 s",
        "step run-sweep: running",
        "sweep run-sweep: trial 1/4 done (opt-a1b2: Succeeded, val_accuracy=0.8123); "
        "best val_accuracy 0.8123, about 3 min left",
        "sweep run-sweep: trial 2/4 done (opt-c3d4: Succeeded, val_accuracy=0.1000); "
        "best val_accuracy 0.8123, about 2 min left",
    ]
    assert all(not ANSI.search(e) for e in events)


def test_the_live_view_shows_each_step_the_sweep_and_the_epoch_bar():
    progress = Progress(["prepare-data", "train-cnn"], {}, {"train-cnn": 4}, clock=Clock())
    for line in (kfp_task("prepare-data"), kfp_task("prepare-data", "SUCCESS"), kfp_task("train-cnn"),
                 "epoch=2 accuracy=0.8 loss=0.5 val_accuracy=0.8 val_loss=0.5"):
        progress.feed(line)
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=100).print(progress.renderable())
    text = ANSI.sub("", out.getvalue())
    assert "✓  prepare-data  succeeded" in text and "▶  train-cnn     running" in text
    assert "train-cnn: epoch 2/4" in text
    assert "\x1b[" in out.getvalue()  # a terminal gets colour


def test_a_failing_step_keeps_its_last_30_lines():
    progress = Progress(["prepare-data"], {}, {}, clock=Clock())
    progress.feed(kfp_task("prepare-data"))
    for i in range(40):
        progress.feed(f"line {i}")
    progress.feed(kfp_task("prepare-data", "FAILURE"))
    step = progress.failing_step()
    assert step.name == "prepare-data" and step.state == "failed"
    assert list(step.lines) == [f"line {i}" for i in range(10, 40)]


def test_the_tee_writes_everything_to_the_log_and_feeds_whole_lines():
    log, seen = io.StringIO(), []
    tee = LogTee(log, seen.append)
    tee.write("first pa")
    tee.write("rt\nsecond\nthi")
    assert seen == ["first part", "second"] and log.getvalue() == "first part\nsecond\nthi"


def test_a_loops_iterations_running_at_once_are_one_step_that_ends_with_its_last_iteration():
    """kfp.local runs a ParallelFor's iterations at once, and logs each as the same task name
    (kfp/local/orchestrator/enhanced_dag_orchestrator.py, 2.17): the pipeline's transfer runs."""
    clock = Clock()
    progress = Progress(["train-cnn", "transfer-learning", "build-report"], {}, {},
                        iterations={"transfer-learning": 2}, clock=clock)
    events = []
    for line, advance in [(kfp_task("transfer-learning"), 0), (kfp_task("transfer-learning"), 1),
                          ("transfer: frozen epoch 1", 80), (kfp_task("transfer-learning", "SUCCESS"), 0),
                          ("transfer: fine-tune epoch 3", 50), (kfp_task("transfer-learning", "SUCCESS"), 0)]:
        clock.now += advance
        events += progress.feed(line)
    assert events == ["step transfer-learning: running (2 iterations)",
                      "step transfer-learning: iteration 2 of 2 running",
                      "step transfer-learning: iteration 1 of 2 succeeded",
                      "step transfer-learning: succeeded in 131 s"]
    # Between the two ends the step was still running, and its lines were kept.
    assert progress.steps["transfer-learning"].state == "succeeded"
    assert list(progress.steps["transfer-learning"].lines) == ["transfer: frozen epoch 1",
                                                               "transfer: fine-tune epoch 3"]


def test_a_failed_iteration_fails_its_loop_step_at_once():
    progress = Progress(["transfer-learning"], {}, {}, iterations={"transfer-learning": 2}, clock=Clock())
    for line in (kfp_task("transfer-learning"), kfp_task("transfer-learning"), "Traceback: out of memory",
                 kfp_task("transfer-learning", "FAILURE")):
        events = progress.feed(line)
    assert events == ["step transfer-learning: iteration 1 of 2 failed"]
    step = progress.failing_step()
    assert step.name == "transfer-learning" and step.state == "failed" and "Traceback: out of memory" in step.lines
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=100).print(progress.renderable())
    assert "✗  transfer-learning  failed" in ANSI.sub("", out.getvalue())


def test_a_loop_whose_last_end_line_kfp_lost_ends_when_the_next_step_starts_or_the_pipeline_ends():
    """kfp.local 2.17's tasks swap the root logger's handlers in and out (logging_utils.local_logger_context),
    so once the first iteration's task is done the others' end lines go nowhere; a later step starts
    only after the whole loop succeeded (enhanced_dag_orchestrator waits for every iteration)."""
    start = ["step transfer-learning: running (2 iterations)", "step transfer-learning: iteration 2 of 2 running",
             "step transfer-learning: iteration 1 of 2 succeeded"]
    pipeline_end = f"10:05:00.000 - INFO - Pipeline 'fashion-mnist-study' finished with status {GREEN}SUCCESS{RESET}"
    for following, advance, expected in [
            (kfp_task("nas"), 20, [*start, "step transfer-learning: succeeded in 80 s", "step nas: running"]),
            (pipeline_end, 25, [*start, "step transfer-learning: succeeded in 85 s"])]:
        clock = Clock()
        progress = Progress(["transfer-learning", "nas"], {}, {}, iterations={"transfer-learning": 2}, clock=clock)
        events = []
        for line, step in [(kfp_task("transfer-learning"), 0), (kfp_task("transfer-learning"), 0),
                           (kfp_task("transfer-learning", "SUCCESS"), 60), (following, advance)]:
            clock.now += step
            events += progress.feed(line)
        assert events == expected
        assert progress.steps["transfer-learning"].state == "succeeded"
