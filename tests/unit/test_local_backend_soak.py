"""A randomized soak: kill a small sweep at random instants, again and again, then let it finish.

The final run must hold exactly the trials of an uninterrupted run, with the
same recorded metrics, whatever was killed when: Optuna's journal, the trial
records, the trials' own checkpoints and the run folder lock all have to
survive. Seeded, so a failure can be replayed; SOAK_KILLS and SOAK_SEED run a
longer soak by hand (e.g. SOAK_KILLS=50).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.fixtures.trials.local_sweeps import alive, events, start_sweep
from tests.unit.test_local_backend import OPTIMIZER_PARAMETER, X_PARAMETER, make_experiment, run

KILLS = int(os.environ.get("SOAK_KILLS", "8"))
SEED = int(os.environ.get("SOAK_SEED", "13"))
SIGNALS = (signal.SIGKILL, signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


def experiment(out: Path) -> dict:
    # 3 x 2 grid points, 3 epochs each, two trials at a time: a few seconds uninterrupted.
    optimizer = {**OPTIMIZER_PARAMETER, "feasibleSpace": {"list": ["sgd", "adam"]}}
    args = ["--epochs", "3", "--sleep", "0.1", "--out", f"{out}/${{trialParameters.trialName}}"]
    return make_experiment([X_PARAMETER, optimizer], trial_args=args, parallelTrialCount=2)


def metrics_file(out: Path) -> str:
    return f"{out}/${{trialSpec.Name}}/metrics.json"


def recorded(result) -> list[tuple]:
    return [(t.name, t.assignments, t.state, t.reason, t.metrics, t.objective_history, t.objective_value)
            for t in result.trials]


def trial_events(out: Path) -> int:
    """How many start and end events the round's trial processes have logged so far."""
    return sum(len(events(trial)) for trial in out.iterdir() if trial.is_dir()) if out.exists() else 0


def kill_at_random_instant(child: subprocess.Popen, out: Path, rng: random.Random) -> int | None:
    """Signal the sweep a random time after a random count of this attempt's trial events; the signal sent.

    The instant follows the sweep's own progress, not the clock: an attempt's first 0-5 events come long
    before a new round's end (12 events and 3 epochs of 0.1 s per trial), so on any machine every round's
    first attempt is still running when its signal comes. None when the attempt ended first. Nothing reads
    the child's pipes meanwhile: a whole sweep prints about 3 KB, well within a pipe's buffer.
    """
    wanted = trial_events(out) + rng.randint(0, 5)
    while trial_events(out) < wanted and child.poll() is None:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))  # between events: inside a trial, its record, the journal or start-up
    sent = rng.choice(SIGNALS)
    if child.poll() is not None:
        return None
    os.kill(child.pid, sent)  # the sweep alone: a SIGKILL leaves its trials behind
    return sent


def test_random_kills_leave_a_sweep_that_finishes_as_an_uninterrupted_one(tmp_path: Path) -> None:
    ref_out = tmp_path / "ref-out"
    reference = run(experiment(ref_out), tmp_path / "ref", trial_metrics_file=metrics_file(ref_out))
    rng = random.Random(SEED)
    rounds, landed, outcomes = 0, 0, {}
    for _ in range(KILLS):
        out, run_dir = tmp_path / f"out-{rounds}", tmp_path / f"run-{rounds}"
        child = start_sweep(experiment(out), run_dir, metrics_file(out))
        sent = kill_at_random_instant(child, out, rng)
        child.communicate(timeout=60)
        if sent is not None and child.returncode != 0:
            # Any exit will do (a signal in Python's own imports ends it as Python does); the final run checks.
            outcome = (signal.Signals(sent).name, child.returncode)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            landed += 1
        if child.returncode == 0:  # this round's sweep got to its end between kills: check it, start another
            check_round(run(experiment(out), run_dir, trial_metrics_file=metrics_file(out)), reference, out, run_dir)
            rounds += 1
    out, run_dir = tmp_path / f"out-{rounds}", tmp_path / f"run-{rounds}"
    check_round(run(experiment(out), run_dir, trial_metrics_file=metrics_file(out)), reference, out, run_dir)
    print(f"soak: {landed} of {KILLS} kills landed in {rounds + 1} sweeps (seed {SEED}); (signal, exit): {outcomes}")
    # Every round's first attempt is killed (see kill_at_random_instant), and only an attempt that is not
    # ends a round: at least half the kills land, on a fast machine or a slow one.
    assert landed >= KILLS // 2, f"only {landed} of {KILLS} kills landed while a sweep ran"


def check_round(final, reference, out: Path, run_dir: Path) -> None:
    """Exactly the reference's trials and metrics, a consistent journal, no trial process left."""
    assert recorded(final) == recorded(reference)
    assert (final.condition, final.reason) == (reference.condition, reference.reason)
    storage = JournalStorage(JournalFileBackend(str(run_dir / "study.journal")))
    trials = optuna.load_study(study_name="sweep", storage=storage).trials
    complete = {t.number: t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete == {number: t.objective_value for number, t in enumerate(final.trials)}
    assert all(t.state.is_finished() for t in trials)
    pids = {pid for trial in final.trials for _, pid in events(out / trial.name)}
    assert not [pid for pid in pids if alive(pid)]  # no trial process outlived the soak
