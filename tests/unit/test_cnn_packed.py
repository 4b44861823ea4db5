"""Packed trials (components/cnn/packed): trained in one JAX program, reported as Katib trials one by one.

Keras picks its backend once, when it is first imported (``KERAS_BACKEND``, else
``~/.keras/keras.json``, else TensorFlow), and cannot switch in that process. The test process may
already hold Keras on TensorFlow, so every pack (and the plain ``study train`` it is compared with)
runs in a subprocess with ``KERAS_BACKEND=jax``. Each scenario runs once per module; the tests
read what it left.

"Plain ``study train``" here is the real command, ``python -m pipelines.cli train``, under the same
JAX backend: a trial's first-step loss depends on the backend's dropout streams and kernels, so
across backends only the parameter count could match. One epoch of one batch makes epoch 1's loss
the first step's loss.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.packed import jax_env, katib_parse, tiny_dataset

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,  # each scenario compiles the pack's program (about a minute on a small CPU)
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="jax is not installed: packed trials need Keras' JAX backend"),
]
BATCH = 32
RELU = ["relu"] * 4

# Runs one pack with Katib's median-stop rule for the members named in spec["stop"] (a value no
# accuracy reaches, so they stop at their first step), prints each member line as it comes and,
# at the end, every member's result.
DRIVER = """
import json, sys
from components.cnn.hparams import TrialConfig
from components.cnn.packed.executor import run_packs
from components.cnn.packed.members import Member
from katib.backends.local.early_stopping import StoppingRule

spec = json.loads(sys.argv[1])
members = [Member(m["name"], TrialConfig(**m["config"]), m["output"]) for m in spec["members"]]
rules = {name: StoppingRule(value=2.0, start_step=1, maximize=True) for name in spec.get("stop", [])}
stop = lambda name, logs: name in rules and rules[name].should_stop(logs["val_accuracy"])
results = run_packs(members, spec["data"], should_stop=stop, on_line=lambda n, l: print("LINE", n, l, flush=True),
                    log=lambda line: print(line, file=sys.stderr, flush=True), lowering=spec.get("lowering", "auto"),
                    epoch_loop=spec.get("epoch_loop", "auto"), max_members=spec.get("max_members"),
                    tail=spec.get("tail", "shrink"), pad_layers=spec.get("pad_layers", ()))
print("RESULTS", json.dumps([r.__dict__ for r in results]), flush=True)
"""


def run_pack(spec: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)], cwd=REPO, capture_output=True,
                          text=True, env=jax_env(**env), timeout=900)


def lines_of(stdout: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("LINE "):
            _, name, text = line.split(" ", 2)
            out.setdefault(name, []).append(text)
    return out


def results_of(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("RESULTS "))
    return {r["name"]: r for r in json.loads(line.removeprefix("RESULTS "))}


def tensorboard_of(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], bool]:
    """The (step, value) scalars of a trial's ``tensorboard`` folder, every event file of it, and
    whether it holds an HParams record, as TensorBoard itself reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = {}
    hparams = False
    for events in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
        hparams = hparams or "_hparams_/session_start_info" in accumulator.PluginTagToContent("hparams")
    return {tag: sorted(values) for tag, values in scalars.items()}, hparams


def member(name: str, root: Path, epochs: int, seed: int, activations=RELU, filters=(32, 32, 64, 64)) -> dict:
    return {"name": name, "output": str(root / name), "config": {
        "epochs": epochs, "batch_size": BATCH, "seed": seed, "activations": activations, "filters": filters}}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    """One batch of training images (so epoch 1 is one step), a validation set with a partial last batch."""
    return tiny_dataset(tmp_path_factory.mktemp("packed") / "data", BATCH)


@pytest.fixture(scope="module")
def stopped_pack(data, tmp_path_factory):
    """Three members of sweep B's kind (one shape, activations per member); "b" stops after epoch 1."""
    root = tmp_path_factory.mktemp("pack")
    spec = {"data": data, "stop": ["b"], "members": [
        member("a", root, 2, 3), member("b", root, 2, 3, ["elu", "selu", "relu", "relu"]),
        member("c", root, 2, 4, ["selu", "relu", "elu", "relu"])]}
    proc = run_pack(spec)
    return root, proc, results_of(proc)


@pytest.fixture(scope="module")
def plain_trial(data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("plain") / "trial"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "train", "--data", data, "--output", str(out),
                           "--epochs", "2", "--batch-size", str(BATCH), "--seed", "3", "--optimizer", "adam"],
                          cwd=REPO, capture_output=True, text=True, env=jax_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def test_a_packed_member_trains_what_study_train_trains(stopped_pack, plain_trial):
    packed = stopped_pack[2]["a"]["metrics"]
    assert packed["params"] == plain_trial["params"] and packed["params"]["total"] == 3_831_018
    assert packed["keras_backend"] == plain_trial["keras_backend"] == "jax"
    # Epoch 1 is one step: its loss is the first step's, from the same weights, batch and dropout masks.
    assert packed["history"]["loss"][0] == pytest.approx(plain_trial["history"]["loss"][0], rel=1e-6)
    # After that step's update (the Keras optimizer's own) the validation loss still agrees.
    assert packed["history"]["val_loss"][0] == pytest.approx(plain_trial["history"]["val_loss"][0], rel=1e-5)
    for name in ("loss", "val_loss"):
        assert packed["history"][name][1] == pytest.approx(plain_trial["history"][name][1], rel=1e-4)


def test_a_member_with_train_images_trains_study_trains_subset(data, tmp_path):
    """``train_images`` (the smoke profile's sweeps train 2,700 of 5,400): the member trains the same
    stratified subset, in the same order, as ``study train --train-images`` does, and says how many."""
    spec = {"data": data, "members": [{**member("s", tmp_path, 1, 3), "config": {
        **member("s", tmp_path, 1, 3)["config"], "train_images": 20}}]}
    packed = results_of(run_pack(spec))["s"]["metrics"]
    out = tmp_path / "plain"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "train", "--data", data, "--output", str(out),
                           "--epochs", "1", "--batch-size", str(BATCH), "--seed", "3", "--train-images", "20"],
                          cwd=REPO, capture_output=True, text=True, env=jax_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads((out / "metrics.json").read_text())
    assert packed["training_images"] == plain["training_images"] == 20
    # One step of 20 of the 32 images: the first step's loss, so the same 20 images and weights.
    assert packed["history"]["loss"][0] == pytest.approx(plain["history"]["loss"][0], rel=1e-6)
    assert packed["history"]["val_loss"][0] == pytest.approx(plain["history"]["val_loss"][0], rel=1e-5)


def test_the_accelerators_layout_trains_what_the_cpus_trains(stopped_pack, data, tmp_path):
    """The module's pack ran with auto, which on this CPU is members unrolled and a host loop per step;
    the same pack again as on a GPU, members batched by vmap and the epoch one lax.scan, trains the same."""
    root, _, unrolled = stopped_pack
    assert {(r["metrics"]["pack"]["lowering"], r["metrics"]["pack"]["epoch_loop"])
            for r in unrolled.values()} == {("unroll", "host")}
    spec = {"data": data, "stop": ["b"], "lowering": "vmap", "epoch_loop": "scan", "members": [
        member("a", tmp_path, 2, 3), member("b", tmp_path, 2, 3, ["elu", "selu", "relu", "relu"]),
        member("c", tmp_path, 2, 4, ["selu", "relu", "elu", "relu"])]}
    vmapped = results_of(run_pack(spec))
    assert {(r["metrics"]["pack"]["lowering"], r["metrics"]["pack"]["epoch_loop"])
            for r in vmapped.values()} == {("vmap", "scan")}
    for name in ("a", "b", "c"):
        ours, theirs = vmapped[name]["metrics"]["history"], unrolled[name]["metrics"]["history"]
        assert ours.keys() == theirs.keys() and vmapped[name]["status"] == unrolled[name]["status"]
        for metric in ours:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-4), (name, metric)


def test_members_of_other_filter_counts_train_their_own_networks_in_one_padded_program(data, tmp_path):
    """Sweep C's kind: p and q differ in conv3 and conv4. With those layers padded they train in one
    program of 32,32,64,64 filters, and each trains what it trains in a program of its own shape: the
    first step's loss from the same weights and dropout masks (q's drop2 masks drawn over its own 16
    channels, not the program's 64), the next steps' within rounding: p's padded conv3 channels are
    sigmoid(0) = 0.5, so only the masks keep conv4's weights on them at zero. Each keeps its own records."""
    def spec(root, **extra):
        return {"data": data, **extra, "members": [
            member("p", root, 2, 3, ["relu", "relu", "sigmoid", "relu"], filters=(32, 32, 16, 64)),
            member("q", root, 2, 4, ["elu", "selu", "relu", "selu"], filters=(32, 32, 64, 16))]}

    padded_proc = run_pack(spec(tmp_path / "padded", pad_layers=[3, 4]))
    padded, own = results_of(padded_proc), results_of(run_pack(spec(tmp_path / "own")))
    assert "pack: 2 members (filters 32,32,64,64 (padded), Adam" in padded_proc.stderr
    # As a GPU runs it: members batched by vmap (each padded dropout a select over the widths), one scan.
    vmapped = results_of(run_pack(spec(tmp_path / "vmapped", pad_layers=[3, 4], lowering="vmap", epoch_loop="scan")))
    for name in ("p", "q"):
        ours, theirs = vmapped[name]["metrics"], own[name]["metrics"]
        assert (ours["pack"]["lowering"], ours["pack"]["epoch_loop"], ours["pack"]["sizes"]) == ("vmap", "scan", [2, 2])
        assert ours["history"]["loss"][0] == pytest.approx(theirs["history"]["loss"][0], rel=1e-6), name
        for metric in ours["history"]:
            assert ours["history"][metric] == pytest.approx(theirs["history"][metric], rel=1e-4), (name, metric)
    for name in ("p", "q"):
        ours, theirs = padded[name]["metrics"], own[name]["metrics"]
        assert ours["pack"]["padded_filters"] == [32, 32, 64, 64] and "padded_filters" not in theirs["pack"]
        assert ours["pack"]["sizes"] == [2, 2] and theirs["pack"]["sizes"] == [1, 1]
        assert ours["params"] == theirs["params"] and ours["params"]["total"] < 3_831_018
        assert ours["history"]["loss"][0] == pytest.approx(theirs["history"]["loss"][0], rel=1e-6), name
        for metric in ours["history"]:
            assert ours["history"][metric] == pytest.approx(theirs["history"][metric], rel=1e-4), (name, metric)
        # The checkpoint holds the member's own variables, cut back to its shapes.
        with np.load(tmp_path / "padded" / name / "checkpoint" / "pack-member.npz") as a, \
                np.load(tmp_path / "own" / name / "checkpoint" / "pack-member.npz") as b:
            assert sorted(a.files) == sorted(b.files) and all(a[k].shape == b[k].shape for k in a.files)
    assert padded["p"]["metrics"]["history"] != padded["q"]["metrics"]["history"]


def test_each_member_writes_its_own_katib_lines_and_records(stopped_pack):
    root, proc, results = stopped_pack
    printed = lines_of(proc.stdout)
    for name, epochs in (("a", 2), ("b", 1), ("c", 2)):
        metrics = json.loads((root / name / "metrics.json").read_text())
        assert results[name]["metrics"] == metrics and metrics["epochs"] == epochs
        logged = (root / name / "metrics.log").read_text()
        assert logged.splitlines() == printed[name]
        parsed = katib_parse(logged)
        assert [line["epoch"] for line in parsed] == list(range(1, epochs + 1))
        for i, line in enumerate(parsed):
            assert set(line) == {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}
            for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
                assert line[key] == pytest.approx(metrics["history"][key][i], rel=1e-5)
        assert json.loads((root / name / "history.json").read_text()) == metrics["history"]
        scalars, hparams = tensorboard_of(root / name / "tensorboard")  # as study train writes its own
        assert hparams and set(scalars) == {"accuracy", "loss", "val_accuracy", "val_loss"}
        for key, values in scalars.items():
            assert [step for step, _ in values] == list(range(1, epochs + 1))
            assert [v for _, v in values] == pytest.approx(metrics["history"][key], rel=1e-6)
        assert (root / name / "model.keras").stat().st_size > 1_000_000
        assert (root / name / "checkpoint" / "pack-member.npz").exists()
    assert results["c"]["metrics"]["config"]["activations"] == ["selu", "relu", "elu", "relu"]
    assert results["a"]["metrics"]["history"] != results["c"]["metrics"]["history"]


def test_early_stopping_removes_a_member_from_the_running_pack(stopped_pack):
    _, proc, results = stopped_pack
    assert results["b"]["status"] == "early_stopped" and results["b"]["metrics"]["early_stopped"] is True
    assert results["a"]["status"] == results["c"]["status"] == "finished"
    assert results["a"]["metrics"]["pack"]["sizes"] == [3, 2]  # b left after epoch 1; a and c went on
    assert results["b"]["metrics"]["pack"]["sizes"] == [3]
    assert "pack: 2 members go on" in proc.stderr


def test_a_freed_row_takes_the_next_waiting_member_so_the_pack_keeps_its_size(stopped_pack, data, tmp_path):
    """The stopped pack's members with two rows at most: c waits, takes b's row when b stops after
    epoch 1, and trains beside a; the pack stays at two rows (one compiled size) until none waits.
    Each member trains what it trained with all three side by side from the start."""
    _, _, together = stopped_pack
    spec = {"data": data, "stop": ["b"], "max_members": 2, "members": [
        member("a", tmp_path, 2, 3), member("b", tmp_path, 2, 3, ["elu", "selu", "relu", "relu"]),
        member("c", tmp_path, 2, 4, ["selu", "relu", "elu", "relu"])]}
    proc = run_pack(spec)
    refilled = results_of(proc)
    assert "pack: c takes b's row" in proc.stderr
    sizes = {name: r["metrics"]["pack"]["sizes"] for name, r in refilled.items()}
    assert sizes == {"a": [2, 2], "b": [2], "c": [2, 1]}  # c's epoch 1 beside a's epoch 2, then alone
    assert re.findall(r"pack: round \d+, (\d+) members? trained", proc.stderr) == ["2", "2", "1"]
    for name in ("a", "b", "c"):
        assert refilled[name]["status"] == together[name]["status"]
        ours, theirs = refilled[name]["metrics"]["history"], together[name]["metrics"]["history"]
        for metric in ours:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-4), (name, metric)
    assert lines_of(proc.stdout)["c"] == (tmp_path / "c" / "metrics.log").read_text().splitlines()


def test_a_padded_pack_keeps_its_size_with_an_idle_row_instead_of_compiling_a_smaller_one(
        stopped_pack, data, tmp_path):
    """tail="pad": when b stops and no member waits, its row stays as an idle row (trained, never recorded)
    while the live members still need the pack's size rounded up to a power of two: 3 of 4 rows, so the
    program keeps the one size it compiled. The live members train what they trained in the shrinking pack."""
    _, _, shrunk = stopped_pack
    spec = {"data": data, "stop": ["b"], "tail": "pad", "members": [
        member("a", tmp_path, 2, 3), member("b", tmp_path, 2, 3, ["elu", "selu", "relu", "relu"]),
        member("c", tmp_path, 2, 4, ["selu", "relu", "elu", "relu"]), member("d", tmp_path, 2, 5)]}
    proc = run_pack(spec)
    padded = results_of(proc)
    assert re.findall(r"pack: round \d+, (\d+) members? trained", proc.stderr) == ["4", "3"]
    assert "3 members trained (1 idle row)" in proc.stderr
    assert not re.search(r"pack: \d+ members? goe?s? on", proc.stderr)  # no smaller pack
    assert {name: r["metrics"]["pack"]["sizes"] for name, r in padded.items()} == {
        "a": [4, 3], "b": [4], "c": [4, 3], "d": [4, 3]}  # the live members beside it, idle rows not counted
    assert padded["b"]["status"] == "early_stopped" and padded["b"]["metrics"]["epochs"] == 1
    assert [katib_parse(t)[0]["epoch"] for t in lines_of(proc.stdout)["b"]] == [1]  # nothing after it left
    for name in ("a", "b", "c"):
        ours, theirs = padded[name]["metrics"]["history"], shrunk[name]["metrics"]["history"]
        for metric in ours:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-4), (name, metric)


def test_a_killed_pack_resumes_without_training_a_finished_epoch_again(data, tmp_path):
    spec = {"data": data, "members": [member("x", tmp_path, 3, 5), member("y", tmp_path, 3, 6)]}
    # The 3rd member checkpoint is x's epoch 2: the process dies with x at epoch 2 and y at epoch 1,
    # right after x's checkpoint and before x's epoch-2 line (a line follows its checkpoint).
    killed = run_pack(spec, STUDY_FAULT="pack.member-checkpointed@3")
    assert killed.returncode == -9, killed.stderr[-2000:]
    before = lines_of(killed.stdout)
    assert [katib_parse(t)[0]["epoch"] for t in before["x"]] == [1]
    assert [katib_parse(t)[0]["epoch"] for t in before["y"]] == [1]
    assert not (tmp_path / "x" / "metrics.json").exists()

    resumed = run_pack(spec)
    results = results_of(resumed)
    after = lines_of(resumed.stdout)
    assert [katib_parse(t)[0]["epoch"] for t in after["x"]] == [3]  # only the epochs not checkpointed
    assert [katib_parse(t)[0]["epoch"] for t in after["y"]] == [2, 3]
    assert results["x"]["epochs_trained"] == 1 and results["y"]["epochs_trained"] == 2
    assert "x resumes after epoch 2 of 3" in resumed.stderr and "y resumes after epoch 1 of 3" in resumed.stderr
    for name in ("x", "y"):
        metrics = results[name]["metrics"]
        assert metrics["epochs"] == 3 and all(len(v) == 3 for v in metrics["history"].values())
        # Each finished epoch's line once: the first attempt's as they were, x's epoch 2 from its checkpoint.
        logged = (tmp_path / name / "metrics.log").read_text().splitlines()
        assert [line["epoch"] for line in katib_parse("\n".join(logged))] == [1, 2, 3]
        assert logged[:1] == before[name] and logged[-len(after[name]):] == after[name]
        scalars, _ = tensorboard_of(tmp_path / name / "tensorboard")  # over both attempts' event files
        assert [step for step, _ in scalars["val_accuracy"]] == [1, 2, 3]
    assert results["x"]["metrics"]["pack"]["sizes"] == [2, 2, 2]
    assert results["y"]["metrics"]["pack"]["sizes"] == [2, 2, 1]  # x left after its epoch 3

    again = run_pack(spec)  # finished: nothing is trained, nothing printed again
    assert all(r["status"] == "finished" and r["epochs_trained"] == 0 for r in results_of(again).values())
    assert lines_of(again.stdout) == {}
