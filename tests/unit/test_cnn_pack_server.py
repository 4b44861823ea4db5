"""The pack server (components/cnn/packed/server.py): a sweep's trials trained in packs by the local
Katib backend, each trial still its own process with its own lines, record and end.

As in test_cnn_packed.py, Keras cannot switch backends in a process, so whatever trains runs in a
subprocess with ``KERAS_BACKEND=jax``: the server always does, and the sweeps here run in a driver
process whose trials inherit it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.packed import jax_env, katib_parse, tiny_dataset

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,  # each pack compiles its program (tens of seconds on a small CPU)
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="jax is not installed: packed trials need Keras' JAX backend"),
]
BATCH = 32

# Runs one sweep stage on the local Katib backend and prints its summary.
SWEEP = """
import json, sys
from components.core.profiles import read_profile
from katib.sweep import run_sweep_stage

data, out, slots = sys.argv[1], sys.argv[2], int(sys.argv[3])
stage = {"stage": "activations", "pad": None, "fixed": None, **json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}")}
settings = {**read_profile("smoke")["sweeps"], "epochs": 2, "batch_size": 32, "train_images": None,
            "local_parallel_trials": 3, "max_trials": {"optimizer": 1, "activations": 3, "filters": 3},
            "local_pack_slots": slots or None, "local_pack_pad_filters": stage["pad"]}
print("SUMMARY", json.dumps(run_sweep_stage(stage["stage"], data, out, settings, stage["fixed"])), flush=True)
"""


def katib_lines(text: str) -> list[dict[str, float]]:
    """Katib's reading of the lines that hold metrics (a trial's log also has its process' own lines)."""
    return [parsed for parsed in katib_parse(text) if parsed]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return tiny_dataset(tmp_path_factory.mktemp("server") / "data", 2 * BATCH)


def sweep_process(data: str, out: Path, slots: int, stage: dict | None = None,
                  **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SWEEP, data, str(out), str(slots), json.dumps(stage or {})],
                          cwd=REPO, capture_output=True, text=True, env=jax_env(**env), timeout=900)


def run_sweep(data: str, out: Path, slots: int, stage: dict | None = None) -> dict:
    """``stage``: which stage ("stage"), its sweeps.local_pack_pad_filters ("pad") and the settings it
    holds fixed ("fixed"); by default sweep B, no padding, the start settings."""
    proc = sweep_process(data, out, slots, stage)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("SUMMARY "))
    return json.loads(line.removeprefix("SUMMARY "))


@pytest.fixture(scope="module")
def sweeps(data, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Sweep B's first three grid points, three trials at once: in one pack, and one process each."""
    root = tmp_path_factory.mktemp("sweeps")
    return {"packed": (root / "packed", run_sweep(data, root / "packed", 3)),
            "plain": (root / "plain", run_sweep(data, root / "plain", 0))}


def test_a_packed_sweeps_trials_are_katib_trials_each_with_its_own_lines_and_record(sweeps):
    out, summary = sweeps["packed"]
    log = (out / "pack-server.log").read_text()
    assert "pack: 3 members (filters" in log  # the three trials trained side by side in one program
    assert summary["condition"] == "Succeeded" and len(summary["trials"]) == 3
    records = {r["name"]: r for r in json.loads((out / "trials.json").read_text())}  # the local Katib records
    for row in summary["trials"]:
        name = row["name"]
        assert row["state"] == "Succeeded"
        metrics = json.loads((out / "outputs" / name / "metrics.json").read_text())
        assert metrics["epochs"] == 2 and metrics["pack"]["sizes"] == [3, 3]
        # The trial's own process printed its member's lines, which Katib's collector read from it ...
        printed = katib_lines((out / "trials" / name / "stdout.log").read_text())
        assert [p["epoch"] for p in printed] == [1, 2]
        assert (out / "outputs" / name / "metrics.log").read_text().splitlines() == [
            li for li in (out / "trials" / name / "stdout.log").read_text().splitlines() if li.startswith("epoch=")]
        for i, line in enumerate(printed):
            assert line["val_accuracy"] == pytest.approx(metrics["history"]["val_accuracy"][i], rel=1e-6)
        # ... and its record holds that trial's observation: its own epochs, its process' exit status.
        record = records[name]
        assert record["state"] == "Succeeded" and record["exit_code"] == 0 and record["attempts"] == 1
        assert record["objective_history"] == pytest.approx(metrics["history"]["val_accuracy"])
        observed = {m["name"]: m for m in record["metrics"]}
        assert float(observed["loss"]["latest"]) == pytest.approx(metrics["history"]["loss"][-1], rel=1e-6)
        assert row["val_accuracy"] == pytest.approx(max(metrics["history"]["val_accuracy"]))
        assert row["training_images"] == metrics["training_images"] == 2 * BATCH
    assert len({r["pid"] for r in records.values()}) == 3  # three trial processes, one pack


def test_a_packed_sweep_trains_what_one_process_per_trial_trains(sweeps):
    """The same three trials, each ``study train`` in its own process (JAX too): the same grid points,
    the same ends, and each epoch's losses to float tolerance."""
    (packed_out, packed), (plain_out, plain) = sweeps["packed"], sweeps["plain"]
    assert not (plain_out / "pack-server.log").exists()
    assert [(r["name"], r["combination"], r["state"]) for r in packed["trials"]] == [
        (r["name"], r["combination"], r["state"]) for r in plain["trials"]]
    for row in plain["trials"]:
        ours = json.loads((packed_out / "outputs" / row["name"] / "metrics.json").read_text())["history"]
        theirs = json.loads((plain_out / "outputs" / row["name"] / "metrics.json").read_text())["history"]
        for metric in ("loss", "val_loss"):
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-4), (row["name"], metric)


def test_sweep_c_padded_trains_in_one_program_what_one_process_per_trial_trains(data, tmp_path):
    """Sweep C's first three grid points with sweeps.local_pack_pad_filters=1,2,3,4, two trials at once:
    one program, padded to 64 filters in every layer (the grid's largest), trains the first two, and the
    third takes a freed row although its conv1 and conv3 are wider than either's (the program was built
    wide enough for the grid, not for its first members). Each trial is its own Katib trial with its own
    parameter count, and trains what its own ``study train`` process trains: each epoch's losses to 1e-4,
    with SGD (Adam's first steps move a weight by its learning rate whatever its gradient's size, so a
    gradient near zero whose sign the padded sums' rounding flips moves it the other way: with Adam these
    trials' second-epoch losses differed by up to 1.3e-4)."""
    stage = {"stage": "filters", "pad": "1,2,3,4", "fixed": {"optimizer": "SGD"}}
    packed = run_sweep(data, tmp_path / "packed", 2, stage)
    plain = run_sweep(data, tmp_path / "plain", 0, stage)
    log = (tmp_path / "packed" / "pack-server.log").read_text()
    assert re.findall(r"pack: \d+ members? \(filters [^)]*\)", log) == ["pack: 2 members (filters 64,64,64,64 (padded)"]
    first, second, third = (r["name"] for r in packed["trials"])
    assert re.search(rf"pack: {third} takes ({first}|{second})'s row", log), log[-2000:]
    assert [(r["name"], r["combination"], r["state"]) for r in packed["trials"]] == [
        (r["name"], r["combination"], r["state"]) for r in plain["trials"]]
    assert len({tuple(r["combination"]) for r in packed["trials"]}) == 3
    filters = [[int(f) for f in r["combination"]] for r in packed["trials"]]
    assert any(c > max(a, b) for a, b, c in zip(*filters, strict=True))  # wider than both first members
    for row in plain["trials"]:
        ours = json.loads((tmp_path / "packed" / "outputs" / row["name"] / "metrics.json").read_text())
        theirs = json.loads((tmp_path / "plain" / "outputs" / row["name"] / "metrics.json").read_text())
        assert ours["config"]["filters"] == theirs["config"]["filters"] == [int(f) for f in row["combination"]]
        assert ours["config"]["optimizer"] == "SGD" and ours["params"] == theirs["params"]
        for metric in ("loss", "val_loss"):
            assert ours["history"][metric] == pytest.approx(theirs["history"][metric], rel=1e-4), (row["name"], metric)
        printed = katib_lines((tmp_path / "packed" / "trials" / row["name"] / "stdout.log").read_text())
        assert [p["epoch"] for p in printed] == [1, 2]


def test_a_packed_sweep_killed_after_its_first_record_resumes_to_the_uninterrupted_sweeps_records(
        sweeps, data, tmp_path):
    """The sweep's process is killed (SIGKILL) right after it recorded its first trial, when the pack
    had finished two trials and the sweep had recorded one. Its pack server goes with it. Run again on
    the same folder, the sweep ends as the uninterrupted one did: every trial succeeded, each epoch's
    line once, the same losses; the new server trains only the trial that had not started (2 rounds of
    one member), and the finished ones' epochs are not trained again."""
    out = tmp_path / "sweep"
    killed = sweep_process(data, out, 2, STUDY_TEST_KILL_AT="recorded@1")
    assert killed.returncode == -9, (killed.stdout + killed.stderr)[-3000:]
    records = {p.parent.name: json.loads(p.read_text()) for p in (out / "trials").glob("*/trial.json")}
    states = {name: r["state"] for name, r in records.items()}
    assert sorted(states.values()) == ["Running", "Succeeded"]  # one recorded, one not; the third not created
    unrecorded = next(name for name, state in states.items() if state == "Running")
    had_marker = (out / "outputs" / unrecorded / "metrics.json").exists()  # or only its epoch-2 checkpoint

    first_log = (out / "pack-server.log").read_text()
    summary = run_sweep(data, out, 2)
    resumed_log = (out / "pack-server.log").read_text()[len(first_log):]
    assert summary["condition"] == "Succeeded" and [r["state"] for r in summary["trials"]] == ["Succeeded"] * 3
    assert re.findall(r"pack: round \d+, (\d+) members? trained", resumed_log) == ["1", "1"]
    _, uninterrupted = sweeps["packed"]
    assert [(r["name"], r["combination"]) for r in summary["trials"]] == [
        (r["name"], r["combination"]) for r in uninterrupted["trials"]]
    packed_out = sweeps["packed"][0]
    for row in summary["trials"]:
        name = row["name"]
        assert [p["epoch"] for p in katib_parse((out / "outputs" / name / "metrics.log").read_text())] == [1, 2]
        ours = json.loads((out / "outputs" / name / "metrics.json").read_text())["history"]
        theirs = json.loads((packed_out / "outputs" / name / "metrics.json").read_text())["history"]
        for metric in ("loss", "val_loss"):
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-4), (name, metric)
    record = next(r for r in json.loads((out / "trials.json").read_text()) if r["name"] == unrecorded)
    if record["attempts"] == 2 and had_marker:  # run again after its pack finished it: its lines again
        assert f"{unrecorded} already finished" in resumed_log
        assert [p["epoch"] for p in katib_lines((out / "trials" / unrecorded / "stdout.log").read_text())] == [1, 2]
    elif record["attempts"] == 2:  # killed after its last checkpoint, before its marker: finished on the way
        assert f"{unrecorded} finished after epoch 2" in resumed_log


class _Client:
    """A trial's process as ``client.train_in_pack`` is, speaking the protocol by hand."""

    def __init__(self, path: str, data: str, output: Path, epochs: int, seed: int):
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.connect(path)
        self.conn.settimeout(600)
        self.reader = self.conn.makefile("r", encoding="utf-8")
        request = {"name": output.name, "data": data, "output": str(output),
                   "config": {"epochs": epochs, "batch_size": BATCH, "seed": seed}}
        self.conn.sendall((json.dumps(request) + "\n").encode())

    def next(self) -> dict:
        return json.loads(self.reader.readline())

    def until_end(self) -> tuple[list[int], dict]:
        epochs = []
        while "line" in (message := self.next()):
            epochs.append(int(katib_parse(message["line"])[0]["epoch"]))
        return epochs, message

    def close(self) -> None:
        self.reader.close()
        self.conn.close()


def test_a_trial_whose_process_ends_leaves_its_pack_and_its_rerun_resumes_there(data, tmp_path):
    """Katib's early stopping (and an interrupted sweep) end a trial's process: its member leaves the
    running pack at the round's end while the others go on, and the trial run again resumes after its
    last checkpointed epoch, training none of its finished epochs again."""
    from components.cnn.packed.server import running_server

    log = tmp_path / "server.log"
    with running_server(2, log) as env:
        path = env["STUDY_PACK_SERVER"]
        a = _Client(path, data, tmp_path / "a", 5, 3)
        b = _Client(path, data, tmp_path / "b", 5, 4)
        first = a.next()
        assert katib_parse(first["line"])[0]["epoch"] == 1
        a.close()  # a's process is ended after its first line, as Katib's early stopping would end it
        b_epochs, b_end = b.until_end()
        b.close()
        assert b_epochs == [1, 2, 3, 4, 5] and b_end["end"] == "finished"
        left = re.search(r"pack: a leaves the pack after epoch (\d): its trial is gone", log.read_text())
        assert left, log.read_text()[-3000:]
        kept = int(left.group(1))
        assert 1 <= kept < 5  # it left before its epochs ran out ...
        assert not (tmp_path / "a" / "metrics.json").exists()  # ... and nothing claims it finished
        assert json.loads((tmp_path / "a" / "checkpoint" / "pack-state.json").read_text())["epoch"] == kept
        sizes = b_end["metrics"]["pack"]["sizes"]
        assert sizes == [2] * kept + [1] * (5 - kept)  # b trained beside a, then alone

        again = _Client(path, data, tmp_path / "a", 5, 3)  # the trial run again
        a_epochs, a_end = again.until_end()
        again.close()
    assert a_epochs == list(range(kept + 1, 6)) and a_end["end"] == "finished"
    assert f"a resumes after epoch {kept} of 5" in log.read_text()
    assert a_end["metrics"]["epochs"] == 5 and len(a_end["metrics"]["history"]["loss"]) == 5
    logged = katib_parse((tmp_path / "a" / "metrics.log").read_text())
    assert [p["epoch"] for p in logged] == [1, 2, 3, 4, 5]  # each epoch's line once


def test_a_finished_trial_run_again_prints_its_lines_again_as_study_train_does(data, tmp_path):
    """A sweep killed after a trial's pack finished it, before the sweep recorded it, runs the trial
    again: like study train, whose finished trial prints its metrics lines again, the trial's process
    gets every epoch's line (Katib's collector reads that process) and nothing is trained."""
    from components.cnn.packed.server import running_server

    log = tmp_path / "server.log"
    with running_server(1, log) as env:
        first = _Client(env["STUDY_PACK_SERVER"], data, tmp_path / "f", 2, 3)
        epochs, end = first.until_end()
        first.close()
        again = _Client(env["STUDY_PACK_SERVER"], data, tmp_path / "f", 2, 3)
        replayed, end_again = again.until_end()
        again.close()
    assert epochs == replayed == [1, 2] and end["end"] == end_again["end"] == "finished"
    assert end_again["metrics"] == end["metrics"]
    assert "pack: f already finished" in log.read_text()
    assert len(re.findall(r"pack: round \d+", log.read_text())) == 2  # the first attempt's two epochs only


def test_study_train_hands_its_trial_to_the_pack_server_and_exits_as_it_ended(data, tmp_path):
    """The trial's real command under STUDY_PACK_SERVER: its lines on stdout, status 0; a server that is
    not there, or a pbt trial (warm-started), is one clear line and status 2, with nothing written."""
    from components.cnn.packed.server import running_server

    command = [sys.executable, "-m", "pipelines.cli", "train", "--data", data, "--epochs", "1",
               "--batch-size", str(BATCH), "--seed", "5"]
    with running_server(1, tmp_path / "server.log") as env:
        proc = subprocess.run([*command, "--output", str(tmp_path / "t")], cwd=REPO, capture_output=True,
                              text=True, env={**jax_env(), **env}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p["epoch"] for p in katib_lines(proc.stdout)] == [1]
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["pack"]["sizes"] == [1]

    gone = subprocess.run([*command, "--output", str(tmp_path / "u")], cwd=REPO, capture_output=True, text=True,
                          env={**jax_env(), "STUDY_PACK_SERVER": str(tmp_path / "none.sock")}, timeout=600)
    assert gone.returncode == 2 and gone.stdout == ""
    assert gone.stderr.strip().splitlines()[-1].startswith("error: STUDY_PACK_SERVER=")
    assert "Traceback" not in gone.stderr and not (tmp_path / "u").exists()

    warm = subprocess.run([*command, "--output", str(tmp_path / "w"), "--warm-start", str(tmp_path / "pbt")],
                          cwd=REPO, capture_output=True, text=True,
                          env={**jax_env(), "STUDY_PACK_SERVER": str(tmp_path / "none.sock")}, timeout=600)
    assert warm.returncode == 2 and "--warm-start (pbt's trials) does not train in a pack" in warm.stderr
    assert len(warm.stderr.strip().splitlines()) == 1 and not (tmp_path / "w").exists()


def test_a_second_sweep_on_a_held_folder_is_refused_before_it_starts_a_pack_server(data, tmp_path):
    """One writer per location: the run folder's claim comes first, so a sweep refused there has started
    no server and written nothing (its pack-server.log would be the first write)."""
    from components.core.errors import UserError
    from components.core.profiles import read_profile
    from katib.sweep import run_sweep_stage

    out = tmp_path / "sweep"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom katib.backends.local import RunFolderLock\n"
         f"with RunFolderLock({str(out)!r}):\n    print('held', flush=True)\n    sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        settings = {**read_profile("smoke")["sweeps"], "local_pack_slots": 2}
        with pytest.raises(UserError, match="is in use by another sweep"):
            run_sweep_stage("activations", data, out, settings, log=lambda line: None)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (out / "pack-server.log").exists()
