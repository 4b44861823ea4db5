"""The AutoKeras search: tiny searches end to end, resume after a kill, the distributed mode, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from components.core import storage
from components.nas.automodel import preview_first_trial
from components.nas.config import NasConfig
from components.nas.export import load_best_model
from components.nas.layout import RESULT_FILE
from components.nas.search import run_nas
from tests.conftest import REPO, assert_user_error, free_port

pytestmark = pytest.mark.slow

# The study's model (issue 4): what the resnet block's first trial builds on 28×28×1 images.
STUDY_PARAMS = {"total": 23_608_205, "trainable": 23_555_082, "non_trainable": 53_123}
TINY = ["--block-type", "vanilla", "--max-trials", "2", "--epochs", "1", "--batch-size", "32"]


def tiny_config(**changes) -> NasConfig:
    return NasConfig(**{"block_type": "vanilla", "max_trials": 2, "epochs": 1, "batch_size": 32, **changes})


def nas_cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """``study nas`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "nas", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


def nas_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("nas: ")]


@pytest.fixture(scope="module")
def tiny_search(tiny_data, tmp_path_factory):
    """One 2-trial search through the function, shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("nas") / "out"
    lines = []
    result = run_nas(tiny_config(), tiny_data, str(out), log=lines.append)
    return out, result, lines


def test_tiny_search_end_to_end(tiny_search):
    out, result, lines = tiny_search
    assert [t["trial_id"] for t in result["trials"]] == ["0", "1"]
    for trial in result["trials"]:
        assert trial["status"] == "COMPLETED" and 0.0 <= trial["val_accuracy"] <= 1.0
        assert trial["tuner_id"] == "tuner0" and trial["seconds"] > 0
        assert trial["hyperparameters"]["optimizer"] in ("adam", "sgd", "adam_weight_decay")
    assert result["best_trial"]["val_accuracy"] == max(t["val_accuracy"] for t in result["trials"])
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["test_images"] == 300
    assert result["search_seconds"] > 0
    assert json.loads((out / RESULT_FILE).read_text()) == result
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [(r["trial"], r["status"], r["worker"]) for r in rows] == [("0", "COMPLETED", "tuner0"),
                                                                       ("1", "COMPLETED", "tuner0")]
    assert float(rows[0]["val_accuracy"]) == pytest.approx(result["trials"][0]["val_accuracy"], abs=1e-4)
    assert "image_block_1/conv_block_1/num_blocks" in rows[0]
    assert sum("started" in line for line in lines) == 2
    # The search folder is in the output, ready to resume.
    assert (out / "search" / "autokeras" / "oracle.json").exists()

    # Started again, a finished search trains nothing and gives the same result.
    again = []
    assert run_nas(tiny_config(), str(out.parent.parent / "unused"), str(out), log=again.append) == result
    assert "already finished" in again[0]


def test_exported_model_loads_and_predicts(tiny_search, tiny_data):
    from components.core.dataset import load_dataset

    out, result, _ = tiny_search
    model = load_best_model(out / "model.keras")
    data = load_dataset(tiny_data)
    probabilities = model.predict(data.images("test"), verbose=0)
    assert probabilities.shape == (300, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(data.y["test"])))
    assert accuracy == pytest.approx(result["test_accuracy"])


def test_reported_parameter_counts_match_the_model(tiny_search):
    from components.cnn.models import param_counts

    out, result, _ = tiny_search
    model = load_best_model(out / "model.keras")
    assert result["params"] == result["model"]["params"] == param_counts(model)
    assert result["params"]["total"] == model.count_params()
    layers = result["model"]["layers"]
    assert [layer["name"] for layer in layers] == [layer.name for layer in model.layers]
    assert sum(layer["params"] for layer in layers) == result["params"]["total"]
    assert layers[2]["type"] == "Normalization" and layers[-1]["type"] == "Softmax"
    summary = (out / "model_summary.txt").read_text()
    assert f"total params: {result['params']['total']:,}" in summary
    assert f"non-trainable params: {result['params']['non_trainable']:,}" in summary


@pytest.mark.parametrize("tuner", ["random", "hyperband", "bayesian"])
def test_the_other_tuners_run_a_tiny_search(tiny_data, tmp_path, tuner):
    config = tiny_config(tuner=tuner)
    result = run_nas(config, tiny_data, str(tmp_path / "nas"), log=lambda line: None)
    # Hyperband may stop before max_trials: its brackets, not the count, end the search.
    assert 1 <= len(result["trials"]) <= 2
    assert all(t["status"] == "COMPLETED" for t in result["trials"])
    assert (tmp_path / "nas" / "model.keras").exists()


def test_the_gpu_studys_q1b_runs_the_search_and_reports_it_against_the_study(tiny_data, tmp_path):
    """bench.gpu_study --q1b: the search in a worker (nas_task), its result in study.md's accuracy table."""
    from bench.gpu_study_report import render_markdown
    from bench.gpu_study_workers import nas_task

    task = {"config": tiny_config(max_trials=1).as_dict(), "data": tiny_data, "output": str(tmp_path / "q1b"),
            "log": str(tmp_path / "logs" / "q1b.log")}
    r = nas_task(task)
    assert "error" not in r, r.get("traceback")
    saved = json.loads((tmp_path / "q1b" / RESULT_FILE).read_text())
    assert r["test_accuracy"] == saved["test_accuracy"] and r["params"] == saved["params"]["total"]
    assert r["trials"] == 1 and r["config"]["block_type"] == "vanilla" and r["wall_s"] > 0
    assert "nas: best trial 0" in (tmp_path / "logs" / "q1b.log").read_text()  # the search's log, not stdout
    row = next(line for line in render_markdown({"q1b": r, "settings": {}}).splitlines() if "Q1B" in line)
    assert row.startswith(f"| Q1B AutoKeras search (test accuracy) | vanilla, {r['params']:,} params, 1 trial, ")
    assert f"| {100 * r['test_accuracy']:.2f}% | – | 92.10% | {100 * r['test_accuracy'] - 92.10:+.2f} |" in row
    failed = nas_task({**task, "data": str(tmp_path / "no-such-dataset"), "output": str(tmp_path / "q1b-2")})
    assert failed["error"] and "test_accuracy" not in failed
    row = next(line for line in render_markdown({"q1b": failed, "settings": {}}).splitlines() if "Q1B" in line)
    assert failed["error"].split(":")[0] in row


def test_resnet_first_trial_is_the_studys_model(tiny_data):
    from components.cnn.models import param_counts

    model, values = preview_first_trial(NasConfig(block_type="resnet", normalize=True, augment=False), tiny_data)
    assert param_counts(model) == STUDY_PARAMS
    assert values["image_block_1/res_net_block_1/pretrained"] is False
    assert values["image_block_1/res_net_block_1/version"] == "resnet50"
    types = [type(layer).__name__ for layer in model.layers]
    assert types[:5] == ["InputLayer", "CastToFloat32", "Normalization", "Resizing", "Concatenate"]
    assert model.get_layer("resizing").output.shape[1:] == (32, 32, 1)
    assert model.get_layer("concatenate").output.shape[1:] == (32, 32, 3)
    assert model.get_layer("resnet50").count_params() == 23_587_712


# Where a search can die as its first trial ends or the next begins. KerasTuner's oracle starts a trial
# by writing its trial.json (status RUNNING) and then oracle.json, which lists it as ongoing; its reload
# retries what oracle.json lists as ongoing. Killed between the two writes, the search had left trial 1
# listed nowhere but in its own trial.json: the rerun counted it toward max_trials, never ran it, and
# exported a search of one trial (in a CI run, where the SIGKILL this test sent on the "trial 0 finished"
# line landed there). And KerasTuner reloads a search only where the tuner's own state file exists, which
# it first writes after the first trial: killed as trial 0 ended, the rerun started over and ran it again.
@pytest.mark.parametrize("fault, killed_after", [
    ("nas.wrote:trial_0/trial.json@3", ["trial 0 started"]),  # trial 0's end written, nothing after it
    ("nas.wrote:trial_1/trial.json@1", ["trial 0 started", "trial 0 finished"]),  # oracle.json not yet
    ("nas.trial-begun@2", ["trial 0 started", "trial 0 finished"]),  # oracle.json lists trial 1 as ongoing
])
def test_search_killed_between_trials_resumes_without_rerunning_the_finished_trial(tiny_data, tmp_path, fault,
                                                                                   killed_after):
    out = tmp_path / "nas"
    args = ["--data", tiny_data, "--output", out, *TINY]
    killed = nas_cli(*args, env={**os.environ, "STUDY_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [" ".join(line.split()[1:4]) for line in nas_lines(killed.stderr)[1:]] == killed_after
    trial_0 = out / "search" / "autokeras" / "trial_0"
    stamp = (trial_0 / "checkpoint.weights.h5").stat().st_mtime_ns
    assert not (out / RESULT_FILE).exists()

    result = nas_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = nas_lines(result.stderr)
    assert "resuming (single, 1 of 2 trials done)" in lines[0]
    assert not any(line.startswith("nas: trial 0 ") for line in lines), lines
    assert sum(line.startswith("nas: trial 1 finished") for line in lines) == 1, lines
    assert (trial_0 / "checkpoint.weights.h5").stat().st_mtime_ns == stamp
    summary = json.loads((out / RESULT_FILE).read_text())
    assert [t["status"] for t in summary["trials"]] == ["COMPLETED", "COMPLETED"]
    assert len(json.loads((out / "search" / "progress.json").read_text())["attempts"]) == 2
    assert result.stdout.startswith("nas: test_accuracy=")


def test_distributed_chief_and_two_workers_split_the_trials(tiny_data, tmp_path):
    out, port = tmp_path / "nas", free_port()
    args = ["--data", tiny_data, "--output", out, *TINY[:2], "--max-trials", "4", *TINY[4:]]
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        procs[tuner_id] = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "nas", *map(str, args)], cwd=REPO, text=True,
            env={**base, "KERASTUNER_TUNER_ID": tuner_id}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outputs = {}
    try:
        for tuner_id, proc in procs.items():
            outputs[tuner_id] = proc.communicate(timeout=420)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, (tuner_id, outputs[tuner_id][1][-3000:])

    ran = {}
    for worker in ("tuner0", "tuner1"):
        stdout, stderr = outputs[worker]
        ran[worker] = {line.split()[2] for line in nas_lines(stderr) if " started on " in line}
        assert ran[worker], f"{worker} ran no trial: {nas_lines(stderr)}"
        assert stdout.startswith(f"nas: worker {worker} ran trials ")
        assert not any(line.startswith("nas: best trial") for line in nas_lines(stderr))
    assert ran["tuner0"].isdisjoint(ran["tuner1"])
    assert ran["tuner0"] | ran["tuner1"] == {"0", "1", "2", "3"}

    # The chief ran no trial and exported the best model, once.
    chief_lines = nas_lines(outputs["chief"][1])
    assert not any(" started on " in line for line in chief_lines)
    assert sum(line.startswith("nas: best trial") for line in chief_lines) == 1
    summary = json.loads((out / RESULT_FILE).read_text())
    assert summary["role"] == "chief"
    assert {t["trial_id"]: t["tuner_id"] for t in summary["trials"]} == {
        trial: worker for worker, trials in ran.items() for trial in trials}
    assert all(t["status"] == "COMPLETED" for t in summary["trials"])
    load_best_model(out / "model.keras")

    # Started again after the search, a worker has nothing to do and a chief that lost its
    # export finishes it alone: neither waits for the other.
    worker = nas_cli(*args, env={**base, "KERASTUNER_TUNER_ID": "tuner1"}, timeout=120)
    assert worker.returncode == 0 and "nothing to do" in worker.stderr, worker.stderr[-2000:]
    (out / RESULT_FILE).unlink()
    # As if the chief had died before exporting: its last oracle save still lists a trial as ongoing.
    oracle_file = out / "search" / "autokeras" / "oracle.json"
    state = json.loads(oracle_file.read_text())
    state["ongoing_trials"] = {"tuner1": state["end_order"][-1]}
    oracle_file.write_text(json.dumps(state))
    chief = nas_cli(*args, env={**base, "KERASTUNER_TUNER_ID": "chief"}, timeout=180)
    assert chief.returncode == 0, chief.stderr[-3000:]
    lines = nas_lines(chief.stderr)
    assert "without serving the oracle" in lines[0] and "4 of 4 trials done" in lines[1], lines
    assert not any(" started on " in line for line in lines)
    assert json.loads((out / RESULT_FILE).read_text())["trials"] == summary["trials"]


def test_search_on_gcs_uploads_each_trial_and_resumes_from_the_bucket(tiny_data, gcs_bucket):
    out = f"{gcs_bucket}/nas"
    result = run_nas(tiny_config(), tiny_data, out, log=lambda line: None)
    files = storage.list_files(out)
    for name in ("model.keras", "model_summary.txt", "trials.csv", RESULT_FILE, "search/settings.json",
                 "search/progress.json", "search/autokeras/oracle.json", "search/autokeras/trial_0/trial.json",
                 "search/autokeras/trial_1/checkpoint.weights.h5", "search/autokeras/best_model.keras"):
        assert name in files, name

    # Lose the outputs but keep the search: started again elsewhere, it trains nothing and exports again.
    storage._blob(storage.join(out, RESULT_FILE)).delete()
    lines = []
    again = run_nas(tiny_config(), tiny_data, out, log=lines.append)
    assert "resuming (single, 2 of 2 trials done)" in lines[0]
    assert not any(" started on " in line for line in lines)
    assert again["trials"] == result["trials"] and again["test_accuracy"] == result["test_accuracy"]
    assert storage.exists(storage.join(out, RESULT_FILE))


# ------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("args, message", [
    (["--block-type", "densenet"], "block_type='densenet': expected one of resnet, xception, vanilla, efficient"),
    (["--tuner", "grid"], "tuner='grid': expected one of greedy, bayesian, hyperband, random"),
    (["--max-trials", "0"], "max_trials=0: expected a positive integer"),
    (["--val-split", "0.005"], "the validation split (val_split=0.005) has no images of class(es)"),
])
def test_bad_search_settings(tiny_data, tmp_path, args, message):
    result = nas_cli("--data", tiny_data, "--output", tmp_path / "nas", *args)
    assert_user_error(result, message)
    assert not (tmp_path / "nas" / RESULT_FILE).exists()


def test_unwritable_search_directory(tiny_data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = nas_cli("--data", tiny_data, "--output", tmp_path / "nas", "--search-dir", blocker / "search", *TINY)
    assert_user_error(result, "cannot create folder")
    assert_user_error(nas_cli("--data", tiny_data, "--output", blocker / "nas", *TINY), "cannot create folder")


def test_bad_distributed_settings(tiny_data, tmp_path):
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_TUNER_ID": "tuner0"}
    assert_user_error(nas_cli("--data", tiny_data, "--output", tmp_path / "nas", *TINY, env=env),
                      "KERASTUNER_ORACLE_PORT=: expected the chief oracle's port")
    env["KERASTUNER_ORACLE_PORT"] = "8000"
    result = nas_cli("--data", tiny_data, "--output", tmp_path / "nas", "--search-dir", "gs://bucket/search",
                     *TINY, env=env)
    assert_user_error(result, "a distributed search needs a folder every worker shares")
