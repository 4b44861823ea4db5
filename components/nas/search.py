"""The search itself: start it, resume it, or join one as KerasTuner's chief or a worker; then export.

The KerasTuner project (oracle state, one folder per trial) lives in the run's storage, and
AutoKeras is always started with ``overwrite=False``: started again on the same output, a
search resumes where it stopped and a finished trial is never run again. NAS keeps
KerasTuner's own resume; what is here keeps it honest (one search per folder, no finished
trial retried, state files written atomically, wall time added up over attempts).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from components.core import storage
from components.core.errors import UserError
from components.core.settings import OBJECTIVE_METRIC
from components.nas.arrays import search_arrays
from components.nas.automodel import build_auto_model, set_seed
from components.nas.config import NasConfig, check_tuner_available
from components.nas.export import export_best
from components.nas.layout import PROGRESS_FILE, PROJECT, RESULT_FILE, SEARCH_FOLDER, SETTINGS_FILE, TRIAL_RUN_FILE
from components.nas.roles import ENV_ORACLE_IP, ENV_ORACLE_PORT, Role, search_role
from components.nas.tuner import WorkerDone, atomic_tuner_state


def run_nas(config: NasConfig, data_uri: str, output_uri: str, search_uri: str | None = None,
            log: Callable[[str], None] = print, role: Role | None = None) -> dict:
    """Search (or resume, or join as chief/worker); export the best model; return what ``nas.json`` holds.

    ``search_uri`` is where the KerasTuner project lives, by default ``<output>/search``. A
    ``gs://`` location is worked on in a local folder and each finished trial is uploaded.
    A worker returns a short record of the trials it ran and exports nothing.
    """
    config = config.normalized()
    check_tuner_available(config.tuner)
    role = role or search_role()
    search_uri = search_uri or storage.join(output_uri, SEARCH_FOLDER)
    if role.kind != "single" and storage.is_gcs(search_uri):
        raise UserError(f"search location {search_uri}: a distributed search needs a folder every worker "
                        "shares (a mounted volume), not gs://")
    if role.exports:
        storage.check_writable(output_uri)
        if storage.exists(storage.join(output_uri, RESULT_FILE)):
            result = json.loads(storage.read_text(storage.join(output_uri, RESULT_FILE)))
            log(f"nas: {output_uri} already finished; best {OBJECTIVE_METRIC}="
                f"{result['best_trial'][OBJECTIVE_METRIC]:.4f}, test accuracy {result['test_accuracy']:.4f}")
            return result

    search_ws = storage.Workspace(search_uri)  # fails early, with one line, where it cannot be written
    from components.core.dataset import load_dataset

    data = load_dataset(data_uri)
    x_train, y_train, x_val, y_val = search_arrays(data, config)
    search_ws.pull()
    _check_resumable(search_ws, config, role)
    project_dir = search_ws.path(PROJECT)
    if role.kind != "single" and _all_trials_ended(project_dir, config.max_trials):
        if role.kind == "worker":
            log(f"nas: worker {role.tuner_id}: every trial of {search_uri} has ended; nothing to do")
            return {"role": role.kind, "tuner_id": role.tuner_id, "trials": []}
        # A chief started again after its workers finished (it stopped before exporting): no worker
        # would ever ask for a trial, and KerasTuner's server would wait for one forever.
        log("nas: every trial has ended; the chief finishes the search without serving the oracle")
        role = Role("single", role.tuner_id)
    progress = _Progress(search_ws, role)
    if role.exports:  # every attempt is listed, even one killed before its first trial ends
        progress.save()
        search_ws.push(PROGRESS_FILE)

    def after_trial(trial_id: str) -> None:
        if role.kind == "single":
            progress.save()
        # Only what the trial changed: its folder and the tuner's and oracle's state.
        search_ws.push(f"{PROJECT}/trial_{trial_id}", f"{PROJECT}/oracle.json",
                       f"{PROJECT}/{role.tuner_id}.json", PROGRESS_FILE, SETTINGS_FILE)

    import keras

    set_seed(config.seed)
    resumed = (project_dir / f"{role.tuner_id}.json").exists()

    @contextlib.contextmanager
    def inside_kerastuner():
        with contextlib.ExitStack() as stack:
            if role.kind == "single":  # KerasTuner reads the variables itself; a chief finishing alone
                stack.enter_context(_environ_without(ENV_ORACLE_IP, ENV_ORACLE_PORT))  # keeps its id
            stack.enter_context(atomic_tuner_state())
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))  # it prints; stdout is for the outcome
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            yield

    with inside_kerastuner():
        auto_model = build_auto_model(config, search_ws.local, log=log, after_trial=after_trial)
    if role.exports:
        _retry_unlisted_starts(auto_model.tuner.oracle)
        _drop_finished_retries(auto_model.tuner.oracle)
    if role.kind == "worker":  # the chief's oracle knows the trials; a worker asks it for the next one
        where = f"worker {role.tuner_id} of the chief at {role.oracle}"
    else:
        done = sum(t.status in ("COMPLETED", "FAILED") for t in auto_model.tuner.oracle.trials.values())
        who = f"chief at {role.oracle}" if role.kind == "chief" else "single"
        where = f"{who}, {done} of {config.max_trials} trials done"
    log(f"nas: {'resuming' if resumed else 'starting'} ({where}): {config.block_type} block, {config.tuner} "
        f"tuner; {len(x_train):,} training and {len(x_val):,} validation images; search in {search_uri}")
    try:
        with inside_kerastuner():
            auto_model.fit(
                x_train, y_train, validation_data=(x_val, y_val), epochs=config.epochs,
                batch_size=config.batch_size, verbose=0,
                # AutoKeras adds this very callback itself, and then, because it added it, trains
                # the best trial's model a second time from scratch. Passing it keeps the search
                # identical and makes the best model the best trial's own checkpoint.
                callbacks=[keras.callbacks.EarlyStopping(patience=10, min_delta=1e-4)])
    except WorkerDone:
        ran = sorted(p.parent.name.removeprefix("trial_") for p in project_dir.glob(f"trial_*/{TRIAL_RUN_FILE}")
                     if json.loads(p.read_text()).get("tuner_id") == role.tuner_id)
        log(f"nas: worker {role.tuner_id} done; it ran trial(s) {', '.join(ran) or 'none'}")
        return {"role": role.kind, "tuner_id": role.tuner_id, "trials": ran}
    if role.kind == "chief":
        auto_model.tuner.oracle.save()  # its last save came before it forgot the last trial (_drop_finished_retries)
    search_seconds = progress.save()
    search_ws.push(PROJECT, PROGRESS_FILE)
    return export_best(auto_model, config, data, role, output_uri, search_uri, project_dir, search_seconds, log)


def _check_resumable(search_ws: storage.Workspace, config: NasConfig, role: Role) -> None:
    """A search folder holds one search: resuming with other settings would mix two."""
    path = search_ws.path(SETTINGS_FILE)
    mine = {k: v for k, v in config.as_dict().items() if k != "max_trials"}  # more trials may be asked for
    if path.exists():
        saved = {k: v for k, v in json.loads(path.read_text()).items() if k != "max_trials"}
        if saved != mine:
            changed = ", ".join(f"{k}: {saved.get(k)!r} -> {mine.get(k)!r}"
                                for k in sorted(set(saved) | set(mine)) if saved.get(k) != mine.get(k))
            raise UserError(f"{search_ws.uri}: holds a search with other settings ({changed}); "
                            "use a new output or search location")
    elif role.exports:
        with storage.atomic_local_path(path) as tmp:
            tmp.write_text(json.dumps(config.as_dict(), indent=2))
        search_ws.push(SETTINGS_FILE)


def _all_trials_ended(project_dir: Path, max_trials: int) -> bool:
    """Whether the oracle saved in the search folder has no trial left to hand out or wait for."""
    path = project_dir / "oracle.json"
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    ended = set(state.get("end_order", []))
    # The oracle saves before it forgets an ended trial, so "ongoing" may name one that ended.
    return (len(ended) >= max_trials and set(state.get("ongoing_trials", {}).values()) <= ended
            and not state.get("retry_queue"))


def _retry_unlisted_starts(oracle) -> None:
    """Run a trial whose start oracle.json never listed.

    KerasTuner's oracle starts a trial by writing its trial.json (RUNNING), then oracle.json, which
    lists it as ongoing; its reload reads every trial.json but retries only what oracle.json lists.
    A search killed between the two writes leaves a trial that nothing retries and that counts toward
    ``max_trials``, so the search would end without running it. Such a trial goes where the reload
    puts the ones it lists: started, and waiting for a retry.
    """
    for trial_id, trial in oracle.trials.items():
        if trial.status == "RUNNING" and trial_id not in oracle._retry_queue:
            oracle._record_values(trial)  # what oracle.json would have held: no new trial draws these values
            if trial_id not in oracle.start_order:
                oracle.start_order.append(trial_id)
            oracle._retry_queue.append(trial_id)


def _drop_finished_retries(oracle) -> None:
    """Never run a finished trial again.

    KerasTuner's reload sends every trial that oracle.json lists as ongoing back for a retry. The
    oracle saves a trial's end before it stops listing it as ongoing, and in distributed mode no
    later save follows, so a finished trial can look interrupted. Its own trial.json knows better.
    """
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue
                           if oracle.trials[trial_id].status not in ("COMPLETED", "FAILED")]


@contextlib.contextmanager
def _environ_without(*names: str):
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class _Progress:
    """Wall time of every attempt at the search, kept in the search folder so resumes add up.

    An attempt's seconds run to its last save (as it starts, as each of its trials ends, at the end):
    of an attempt that was killed, the time after its last save is not counted.
    """

    def __init__(self, search_ws: storage.Workspace, role: Role):
        self.path = search_ws.path(PROGRESS_FILE)
        self.record = json.loads(self.path.read_text()) if self.path.exists() else {"attempts": []}
        self.started = time.time()
        self.record["attempts"].append({"role": role.kind, "started": self.started, "seconds": 0.0})

    def save(self) -> float:
        self.record["attempts"][-1]["seconds"] = time.time() - self.started
        with storage.atomic_local_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.record, indent=2))
        return self.total

    @property
    def total(self) -> float:
        return sum(a["seconds"] for a in self.record["attempts"])
