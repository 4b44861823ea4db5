"""Every bad input named in the foundation issue: exit status 2, one line naming the problem, no traceback."""

import gzip
import shutil
from pathlib import Path

import pytest

from components.data import IDX_FILES
from tests.conftest import assert_user_error, last_error_line, run_cli


@pytest.fixture
def broken_copy(tmp_path, fmnist_dir):
    def make(name: str, mutate) -> Path:
        folder = tmp_path / "src"
        folder.mkdir(exist_ok=True)
        for base in IDX_FILES.values():
            shutil.copy(fmnist_dir / f"{base}.gz", folder)
        path = folder / f"{name}.gz"
        path.write_bytes(gzip.compress(mutate(gzip.decompress(path.read_bytes()))))
        return folder
    return make


def test_missing_data_folder(tmp_path):
    assert_user_error(run_cli("data", "--source", tmp_path / "nope", "--out", tmp_path / "o"),
                      "no such data folder")


def test_corrupt_data_files(broken_copy, tmp_path):
    cases = [
        ("train-images-idx3-ubyte", lambda raw: b"\x00\x00\x08\x05" + raw[4:], "bad IDX magic number"),
        ("t10k-images-idx3-ubyte", lambda raw: raw[:-784], "truncated or padded"),
        ("train-labels-idx1-ubyte", lambda raw: raw[:8] + bytes([200]) + raw[9:], "label 200 at index 0"),
    ]
    for name, mutate, message in cases:
        out = tmp_path / f"out-{name}"
        result = run_cli("data", "--source", broken_copy(name, mutate), "--out", out)
        assert_user_error(result, message)
        assert not (out / "metadata.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "adamw"], "optimizer='adamw': expected one of Adadelta, Adagrad"),
    (["--activations", "relu,relu,tanhh,relu"], "'tanhh' is not an activation"),
    (["--activations", "relu,relu"], "expected 4 values"),
    (["--epochs", "0"], "epochs=0: expected a positive integer"),
    (["--batch-size", "-5"], "batch_size=-5: expected a positive integer"),
    (["--filters", "32,0,64,64"], "filters=(32, 0, 64, 64): 0 is not a positive integer filter count"),
    (["--filters", "32,x,64,64"], "expected comma-separated integers"),
    (["--learning-rate", "-1"], "learning_rate=-1.0: expected a positive number or null"),
    (["--train-images", "0"], "train_images=0: expected a positive integer or null"),
])
def test_bad_trial_settings(tiny_data, tmp_path, args, message):
    result = run_cli("train", "--data", tiny_data, "--output", tmp_path / "t", *args)
    assert_user_error(result, message)
    assert not (tmp_path / "t").exists()


def test_missing_dataset_artifact(tmp_path):
    assert_user_error(run_cli("train", "--data", tmp_path, "--output", tmp_path / "t", "--epochs", "1"),
                      "not a dataset artifact")


def test_unwritable_output(tiny_data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_user_error(run_cli("train", "--data", tiny_data, "--output", blocker / "t"), "cannot create folder")
    assert_user_error(run_cli("data", "--out", blocker / "d"), "cannot create folder")


def test_gcs_bucket_that_does_not_exist(gcs_env, tmp_path):
    result = run_cli("data", "--out", "gs://no-such-bucket-here/data", env=gcs_env)
    assert_user_error(result, "gs://no-such-bucket-here: bucket does not exist")


def test_gcs_without_credentials(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           # A missing key file makes google-auth fail at once instead of probing a metadata server.
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing-key.json"), "NO_GCE_CHECK": "True"}
    result = run_cli("data", "--out", "gs://some-bucket/data", env=env)
    assert_user_error(result, "no Google Cloud credentials found")


def test_unknown_profile_and_bad_override(tmp_path):
    assert_user_error(run_cli("profile", "nightly"), "profile 'nightly': expected one of smoke, study")
    assert_user_error(run_cli("profile", "smoke", "--set", "train.epoch=3"), "no setting 'epoch' in train")
    assert_user_error(run_cli("profile", "smoke", "--set", "epochs"), "expected SECTION.KEY=VALUE")


def test_usage_mistake_is_one_line_and_status_2():
    result = run_cli("train", "--no-such-flag")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_experiment_lists_every_problem_and_runs_nothing(tmp_path):
    import yaml

    from katib.experiments import EXPERIMENTS_DIR

    experiment = yaml.safe_load((EXPERIMENTS_DIR / "optimizer.yaml").read_text())
    experiment["spec"]["algorithm"]["algorithmName"] = "gridd"
    experiment["spec"]["objective"]["additionalMetricNames"].append("val_accuracy")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = run_cli("sweep", "run", path, "--run-dir", tmp_path / "run")
    assert_user_error(result, "invalid Experiment fmstudy-optimizer:")
    line = last_error_line(result.stderr)
    assert "gridd" in line and "val_accuracy" in line
    assert not (tmp_path / "run").exists()


def _saved_model(folder: Path, **kwargs) -> Path:
    """An untrained study CNN saved where `study evaluate --model` looks (training adds nothing here)."""
    from components.cnn.models import build_study_cnn
    from components.core.training import save_model

    folder.mkdir(parents=True)
    model = build_study_cnn(filters=(4, 4, 8, 8), **kwargs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    save_model(model, folder / "model.keras")
    return folder


def test_evaluate_on_a_truncated_model_names_the_file(tiny_data, tmp_path):
    model = _saved_model(tmp_path / "trial")
    path = model / "model.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = run_cli("evaluate", "--model", model, "--data", tiny_data, "--out", tmp_path / "eval")
    assert_user_error(result, f"{path}: not a readable Keras model (damaged or truncated")
    assert not (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (32, 32, 1)}, "images of shape (28, 28, 1), but the model at"),
    ({"num_classes": 5}, "10 classes, but the model at"),
])
def test_evaluate_on_data_the_model_does_not_fit(tiny_data, tmp_path, kwargs, message):
    model = _saved_model(tmp_path / "trial", **kwargs)
    result = run_cli("evaluate", "--model", model, "--data", tiny_data, "--out", tmp_path / "eval")
    assert_user_error(result, message)
    assert not (tmp_path / "eval").exists() or not list((tmp_path / "eval").iterdir())


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_study_run_refuses_bad_settings_before_any_step(tmp_path):
    """One line per problem, exit 2, and no run folder: nothing ran (before, sweeps.epochs=abc failed
    after the data and training steps, and train.epochs=abc was a ValueError traceback)."""
    result = run_cli("run", "--runs-dir", tmp_path / "runs", "--run-id", "bad",
                     "--set", "train.epochs=abc", "--set", "sweeps.epochs=abc", "--set", "train.optimizer=3",
                     "--set", "sweeps.max_trials.optimizer=0", "--set", "train.activations=relu,relu,tanhh,relu")
    assert_user_error(result, "profile smoke:")
    assert _error_lines(result) == [
        "error: profile smoke: train.optimizer=3: expected one of Adadelta, Adagrad, Adamax, Ftrl, Nadam, "
        "RMSprop, Adam, SGD",
        "error: profile smoke: train.activations=['relu', 'relu', 'tanhh', 'relu']: 'tanhh' is not an "
        "activation; expected one of elu, relu, selu, gelu, silu, swish, tanh, sigmoid, softplus, softsign, "
        "leaky_relu, relu6, mish, linear",
        "error: profile smoke: train.epochs='abc': expected a positive integer",
        "error: profile smoke: sweeps.epochs='abc': expected a positive integer",
        "error: profile smoke: sweeps.max_trials.optimizer=0: expected a positive integer or null (the whole grid)",
    ]
    assert "\x1b[" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("setting, message", [
    ("sweeps.max_trials.activations=0", "sweeps.max_trials.activations=0: expected a positive integer or null"),
    ("sweeps.max_trials.filters=-1", "sweeps.max_trials.filters=-1: expected a positive integer or null"),
    ("sweeps.parallel_trials=0", "sweeps.parallel_trials=0: expected a positive integer"),
    ("sweeps.early_stopping=maybe", "sweeps.early_stopping='maybe': expected true or false"),
    ("data.val_fraction=1.5", "data.val_fraction=1.5: expected a number between 0 and 1"),
    ("train.learning_rate=-1", "train.learning_rate=-1: expected a positive number or null"),
    ("train.filters=[32, 0, 64, 64]", "train.filters=[32, 0, 64, 64]: 0 is not a positive integer filter count"),
    ("nas.tuner=bogus", "nas: tuner='bogus': expected one of"),
    ("transfer.dropout=abc", "transfer: dropout='abc': expected a rate"),
])
def test_profile_and_katib_generate_apply_the_same_checks(tmp_path, setting, message):
    assert_user_error(run_cli("profile", "smoke", "--set", setting), message)
    result = run_cli("katib", "generate", "--profile", "study", "--set", setting, "--out", tmp_path / "exp")
    assert_user_error(result, message.replace("smoke", "study"))
    assert not (tmp_path / "exp").exists()


def test_a_sweep_winner_can_be_trained_by_study_run():
    """train.activations and train.filters are settings, as YAML lists or comma-separated, into the pipeline."""
    import json

    from pipelines.study_pipeline import pipeline_arguments

    result = run_cli("profile", "study", "--set", "train.activations=selu,relu,relu,relu",
                     "--set", "train.filters=[32, 64, 64, 64]", "--set", "train.optimizer=nadam")
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert profile["train"]["activations"] == ["selu", "relu", "relu", "relu"]
    arguments = pipeline_arguments(profile)
    assert (arguments["activations"], arguments["filters"]) == ("selu,relu,relu,relu", "32,64,64,64")
    for name in ("smoke", "study"):  # the stock profiles pass their own checks
        assert run_cli("profile", name).returncode == 0
