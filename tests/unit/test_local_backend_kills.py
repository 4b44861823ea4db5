"""The local Katib backend under kills, interrupts and a second sweep on one run folder.

Every dangerous instant is reached deterministically: the fake trial stalls
on purpose (--stall-before), or the sweep stops itself at a named point
(STUDY_TEST_PAUSE_AT / STUDY_TEST_KILL_AT, katib/backends/local/hooks.py) and the test
then sends its signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.fixtures.trials.local_sweeps import (
    RUN_SWEEP,
    alive,
    child_env,
    events,
    kill_quietly,
    pids_that,
    records,
    signal_and_continue,
    start_sweep,
    wait_for,
    wait_stopped,
)
from tests.unit.test_local_backend import X_PARAMETER, make_experiment, run

GRID_3 = [X_PARAMETER]  # x in 0.1, 0.3, 0.5


def resumable(out: Path, *extra: str, **spec) -> dict:
    """A 3-point grid whose trials keep their state in out/<trial name>, like study train.

    The grid's order is Optuna's seeded shuffle: trial 0 has x=0.5, the one a stall applies to.
    """
    args = ["--epochs", "3", "--out", f"{out}/${{trialParameters.trialName}}", "--stall-if-x", "0.5", *extra]
    return make_experiment(GRID_3, trial_args=args, **spec)


def metrics_file(out: Path) -> str:
    return f"{out}/${{trialSpec.Name}}/metrics.json"


# ---- 1. one sweep per run folder -------------------------------------------------


def test_a_second_sweep_on_the_run_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    first = start_sweep(experiment, run_dir)
    try:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"), first)  # first sweep is mid-trial
        second = start_sweep(experiment, run_dir, cli=True)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2, stderr
        assert "Traceback" not in stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and f"pid {first.pid}" in last and str(run_dir) in last, last
        assert len(records(run_dir)) == 1  # the second sweep started nothing
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    result = run(experiment, run_dir)  # the lock died with its holder
    assert [t.state for t in result.trials] == ["Succeeded"] * 3


def test_the_run_folder_lock_is_released_by_a_kill(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = start_sweep(make_experiment(GRID_3, maxTrialCount=1), run_dir, STUDY_TEST_KILL_AT="run-folder-locked")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert len(run(make_experiment(GRID_3, maxTrialCount=1), run_dir).trials) == 1


# ---- 2. Ctrl-C inside Optuna's ask -----------------------------------------------


def test_resume_completes_a_trial_that_an_interrupted_ask_left_without_parameters(tmp_path: Path) -> None:
    # What a signal inside ask left in the journal: a running trial with no parameters (and no record).
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage, study_name="sweep", direction="maximize")
    storage.create_new_trial(study._study_id)

    result = run(make_experiment(GRID_3), tmp_path)

    assert sorted(t.assignment_values["x"] for t in result.trials) == ["0.1", "0.3", "0.5"]
    assert [t.name for t in result.trials] == ["sweep-0000", "sweep-0001", "sweep-0002"]
    assert all(t.state == "Succeeded" for t in result.trials)


def test_ctrl_c_inside_optunas_ask_waits_for_the_ask_and_resumes_cleanly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Paused inside the first ask: the trial exists, its parameters are not written yet.
    child = start_sweep(make_experiment(GRID_3), run_dir, STUDY_TEST_PAUSE_AT="journal-set_trial_param")
    try:
        wait_stopped(child)
        signal_and_continue(child, signal.SIGINT)
        child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    assert child.returncode == 130
    storage = JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    trials = optuna.load_study(study_name="sweep", storage=storage).trials
    assert [sorted(t.params) for t in trials] == [["x"]]  # the ask ran to its end before stopping
    assert [r["assignments"] for r in records(run_dir).values()] == [[{"name": "x", "value": "0.5"}]]
    result = run(make_experiment(GRID_3), run_dir)
    assert sorted(t.assignment_values["x"] for t in result.trials) == ["0.1", "0.3", "0.5"]


def test_ctrl_c_inside_optunas_tell_lets_the_tell_finish(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Paused as the first trial's outcome is written to the journal (its record is already saved).
    child = start_sweep(make_experiment(GRID_3), run_dir, STUDY_TEST_PAUSE_AT="journal-set_trial_state_values")
    try:
        wait_stopped(child)
        signal_and_continue(child, signal.SIGINT)
        child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    assert child.returncode == 130
    storage = JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    (trial,) = optuna.load_study(study_name="sweep", storage=storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == records(run_dir)["sweep-0000"]["objective_value"]
    result = run(make_experiment(GRID_3), run_dir)
    assert [t.attempts for t in result.trials] == [1, 1, 1]  # nothing ran twice


def test_a_sigkill_inside_optunas_ask_is_repaired_on_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = start_sweep(make_experiment(GRID_3), run_dir, STUDY_TEST_KILL_AT="journal-set_trial_param@2")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    result = run(make_experiment(GRID_3), run_dir)
    assert [(t.name, t.assignment_values["x"]) for t in result.trials] == [
        ("sweep-0000", "0.5"), ("sweep-0001", "0.3"), ("sweep-0002", "0.1")]


# ---- 3. the journal lock ---------------------------------------------------------


def test_a_stale_optuna_journal_lock_is_broken_with_a_message(tmp_path: Path) -> None:
    # Optuna's default lock is a symlink to the journal; a sweep killed while writing left it behind.
    run_dir = tmp_path / "runs" / "sweep"
    run_dir.mkdir(parents=True)
    journal = "runs/sweep/study.journal"  # as a relative --run-dir names it
    storage = JournalStorage(JournalFileBackend(str(tmp_path / journal)))
    optuna.create_study(storage=storage, study_name="sweep", direction="maximize")
    os.symlink(journal, tmp_path / f"{journal}.lock")
    experiment_file = tmp_path / "experiment.json"
    experiment_file.write_text(json.dumps(make_experiment(GRID_3, maxTrialCount=1)))

    rerun = subprocess.run([sys.executable, str(RUN_SWEEP), str(experiment_file), "runs/sweep"], cwd=tmp_path,
                           env=child_env(), capture_output=True, text=True, timeout=90)

    assert rerun.returncode == 0, rerun.stderr
    assert "removed a stale journal lock" in rerun.stdout
    assert not os.path.lexists(tmp_path / f"{journal}.lock")


def test_a_sweep_killed_while_holding_the_journal_lock_leaves_none(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = start_sweep(make_experiment(GRID_3), run_dir, STUDY_TEST_KILL_AT="journal-locked@4")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    rerun = start_sweep(make_experiment(GRID_3), run_dir)
    rerun.communicate(timeout=90)  # a lock that outlived its owner would make this hang
    assert rerun.returncode == 0
    assert [r["state"] for r in records(run_dir).values()] == ["Succeeded"] * 3


# ---- 4. trials are stopped, orphans found ----------------------------------------


def test_sigterm_stops_the_sweep_and_its_trial(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    child = start_sweep(experiment, run_dir)
    try:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"), child)
        (trial_pid,) = pids_that(out / "sweep-0000", "stalled")
        child.send_signal(signal.SIGTERM)  # the sweep alone, as a process manager stops it
        child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    try:
        assert child.returncode != 0
        assert pids_that(out / "sweep-0000", "sigterm") == [trial_pid]  # the sweep stopped its trial
        assert not alive(trial_pid)
        assert records(run_dir)["sweep-0000"]["state"] == "Running"
    finally:
        kill_quietly(trial_pid)
    result = run(experiment, run_dir)
    assert [t.state for t in result.trials] == ["Succeeded"] * 3


def test_a_rerun_stops_an_orphaned_trial_before_running_it_again(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    child = start_sweep(experiment, run_dir)
    trial_out = out / "sweep-0000"
    try:
        wait_for(lambda: pids_that(trial_out, "stalled"), child)
        (orphan,) = pids_that(trial_out, "stalled")
        os.kill(child.pid, signal.SIGKILL)  # the sweep alone: its trial is left running
        child.communicate(timeout=60)
        assert alive(orphan)
        lines: list[str] = []
        result = run(experiment, run_dir, log=lines.append)
        assert not alive(orphan)
        order = [name for name, pid in events(trial_out) if name in ("sigterm", "start-after-1")]
        assert order == ["sigterm", "start-after-1"]  # stopped before its next attempt started
        assert any("still running from an earlier sweep" in line and str(orphan) in line for line in lines)
        assert [t.state for t in result.trials] == ["Succeeded"] * 3
        assert result.trials[0].attempts == 2
    finally:
        kill_quietly(child.pid)
        for pid in pids_that(trial_out, "stalled"):
            kill_quietly(pid)


# ---- 5. saying how to resume -----------------------------------------------------


def test_an_interrupted_sweep_says_the_command_that_resumes_it(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    child = start_sweep(experiment, run_dir, cli=True)
    try:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"), child)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    assert child.returncode == 130
    experiment_file = run_dir.parent / f"{run_dir.name}.experiment.json"
    command = f"-m pipelines.cli sweep run {experiment_file} --run-dir {run_dir}"
    assert any("to resume" in line and line.endswith(command) for line in stdout.splitlines()), stdout[-2000:]
    status = json.loads((run_dir / "experiment_status.json").read_text())
    assert status["condition"] == "Running" and status["message"].endswith(command)


def test_the_resume_command_can_be_named_by_the_caller(tmp_path: Path) -> None:
    # A KFP step resumes by running the pipeline again, not by its own command line.
    out = tmp_path / "out"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    lines: list[str] = []

    def ctrl_c_when_stalled() -> None:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"))
        os.kill(os.getpid(), signal.SIGINT)  # the runner handles it on this test's main thread

    threading.Thread(target=ctrl_c_when_stalled, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(experiment, tmp_path / "run", resume_hint="study run --run-id 7", log=lines.append)
    assert lines[-1].endswith("to resume, run again with the same run folder: study run --run-id 7")
    assert not any(alive(pid) for pid in pids_that(out / "sweep-0000", "stalled"))


def test_a_half_written_last_journal_entry_is_dropped(tmp_path: Path) -> None:
    # SIGKILL cannot split one write(2), but a crash of the machine or a full disk can.
    experiment = make_experiment(GRID_3, maxTrialCount=1, resumePolicy="LongRunning")
    run(experiment, tmp_path)
    with open(tmp_path / "study.journal", "ab") as journal:
        journal.write(b'{"op_code":4,"worker_id":"x","study_id":0,"datetime_start":"20')
    experiment["spec"]["maxTrialCount"] = 2
    lines: list[str] = []
    assert len(run(experiment, tmp_path, log=lines.append).trials) == 2
    assert any("half-written last entry" in line for line in lines)
    experiment["spec"]["maxTrialCount"] = 3
    assert [t.state for t in run(experiment, tmp_path).trials] == ["Succeeded"] * 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="found by its environment in /proc (Linux)")
def test_a_trial_started_but_not_yet_recorded_is_found_and_stopped(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-at-start", maxTrialCount=3)
    child = start_sweep(experiment, run_dir, STUDY_TEST_KILL_AT="trial-started")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    trial_out = out / "sweep-0000"
    try:
        wait_for(lambda: pids_that(trial_out, "stalled"))
        (orphan,) = pids_that(trial_out, "stalled")
        assert alive(orphan) and records(run_dir)["sweep-0000"]["pid"] is None  # killed before recording it
        lines: list[str] = []
        result = run(experiment, run_dir, log=lines.append)
        assert not alive(orphan)
        assert [name for name, _ in events(trial_out)][:3] == ["start-after-0", "stalled", "sigterm"]
        assert any(str(orphan) in line and "still running" in line for line in lines)
        assert [t.state for t in result.trials] == ["Succeeded"] * 3
    finally:
        for pid in pids_that(trial_out, "stalled"):
            kill_quietly(pid)


def test_the_resume_command_of_a_console_script_is_its_name(monkeypatch) -> None:
    from katib.backends.local.interrupts import resume_command

    study = Path(sys.executable).with_name("study")
    monkeypatch.setattr(sys, "argv", [str(study), "sweep", "run", "my experiment.yaml"])
    monkeypatch.setenv("PATH", f"{study.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert resume_command() == "study sweep run 'my experiment.yaml'"
    monkeypatch.setenv("PATH", "/nonexistent")  # not found under its name: the full command line
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, str(study), "sweep", "run", "e.yaml"])
    assert resume_command() == f"{sys.executable} {study} sweep run e.yaml"


def test_a_running_record_whose_optuna_trial_is_closed_runs_again_under_a_new_one(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    experiment = resumable(out, "--stall-before", "2", maxTrialCount=3)
    child = start_sweep(experiment, run_dir)
    try:
        wait_for(lambda: pids_that(out / "sweep-0000", "stalled"), child)
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=60)
    finally:
        kill_quietly(child.pid)
    storage = JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    study = optuna.load_study(study_name="sweep", storage=storage)
    study.tell(0, state=optuna.trial.TrialState.FAIL)  # closed, while its record still says Running
    result = run(experiment, run_dir)
    by_name = {t.name: t for t in result.trials}
    # Optuna had one trial when the sweep stopped: the record's new Optuna trial is number 1.
    assert by_name["sweep-0000"].state == "Succeeded" and by_name["sweep-0000"].number == 1
    trials = optuna.load_study(study_name="sweep", storage=storage).trials
    assert trials[1].params == {"x": 0.5} and trials[1].state == optuna.trial.TrialState.COMPLETE
    assert sorted(t.assignment_values["x"] for t in result.trials) == ["0.1", "0.3", "0.5"]


def test_the_run_folder_lock_is_reentrant_in_its_process(tmp_path: Path) -> None:
    # katib.sweep holds it around run_experiment, which takes it again.
    from katib.backends.local import RunFolderLock

    experiment = make_experiment(GRID_3, maxTrialCount=1)
    experiment_file = tmp_path / "experiment.json"
    experiment_file.write_text(json.dumps(experiment))
    with RunFolderLock(tmp_path / "run"):
        assert run(experiment, tmp_path / "run").succeeded
        other = subprocess.run([sys.executable, str(RUN_SWEEP), str(experiment_file), str(tmp_path / "run")],
                               env=child_env(), capture_output=True, text=True, timeout=90)
        assert other.returncode == 2 and f"(pid {os.getpid()})" in other.stderr
    assert run(experiment, tmp_path / "run").succeeded  # released when the outer holder let go
