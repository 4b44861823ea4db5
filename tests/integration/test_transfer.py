"""Transfer learning end to end: the target image folder, both phases for each base on a few hundred
images at the smallest input sizes, the offline source->target flow, weights from a file (local and
gs://), resuming, the KFP components under kfp.local, and every bad input of the issue."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from components.core import storage
from components.report.transfer_section import transfer_section
from components.transfer.data import scan_image_folder, write_image_folder
from components.transfer.models import BASES, base_of, build_transfer_model
from components.transfer.settings import TransferSettings
from components.transfer.training import run_transfer
from tests.conftest import REPO, last_error_line

pytestmark = pytest.mark.slow

TARGET_NAMES = ["ankle_boot", "bag", "sandal", "shirt", "sneaker"]


def run_transfer_cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "transfer", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


def assert_user_error(result, pattern: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    line = last_error_line(result.stderr)
    assert line.startswith("error: ") and pattern in line, line
    return line


@pytest.fixture(scope="module")
def target_folder(tiny_data, tmp_path_factory) -> Path:
    """Fashion-MNIST classes 5-9 of the tiny artifact as PNG files: 60 per class (36/12/12 after the split)."""
    out = tmp_path_factory.mktemp("target") / "images"
    write_image_folder(tiny_data, str(out), images_per_class=60, seed=3)
    return out


def base_weights(model_or_base) -> list[np.ndarray]:
    return [w.numpy() for w in model_or_base.weights]


def test_image_folder_of_classes_5_to_9_splits_reproducibly(target_folder, tiny_data):
    record = json.loads((target_folder / "image_folder.json").read_text())
    assert record["fashion_mnist_labels"] == [5, 6, 7, 8, 9] and record["images"] == 300
    assert sorted(p.name for p in target_folder.iterdir() if p.is_dir()) == TARGET_NAMES
    for name in TARGET_NAMES:
        files = sorted((target_folder / name).glob("*.png"))
        assert len(files) == 60
        with Image.open(files[0]) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    first = scan_image_folder(target_folder, "t", 0.2, 0.2, split_seed=42)
    again = scan_image_folder(target_folder, "t", 0.2, 0.2, split_seed=42)
    other = scan_image_folder(target_folder, "t", 0.2, 0.2, split_seed=43)
    assert first.files == again.files and first.files != other.files
    assert {s: len(f) for s, f in first.files.items()} == {"train": 180, "val": 60, "test": 60}
    assert not set(first.files["train"]) & (set(first.files["val"]) | set(first.files["test"]))
    assert np.bincount(first.labels["val"]).tolist() == [12] * 5


def test_offline_source_to_target_flow_through_both_phases_and_resume(target_folder, tiny_data, tmp_path):
    """MobileNetV2 pretrained here on classes 0-4, transferred to the 5-9 image folder: the CLI."""
    out = tmp_path / "mobilenet"
    args = ["run", "--base", "mobilenet_v2", "--data", target_folder, "--out", out, "--weights", "source",
            "--source-data", tiny_data, "--input-size", 32, "--alpha", 0.35, "--source-epochs", 1,
            "--frozen-epochs", 1, "--fine-tune-epochs", 1, "--fine-tune-learning-rate", 1e-3, "--batch-size", 32]
    result = run_transfer_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pretraining on the source task" in result.stderr
    assert f"-> {out}" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"]["kind"] == "source"
    assert metrics["weights"]["description"].startswith(
        "weights pretrained here on Fashion-MNIST classes 0–4 (T-shirt/top, Trouser, Pullover, Dress, Coat): "
        "450 images, 1 epoch, source validation accuracy ")
    assert metrics["data"]["classes"] == TARGET_NAMES and metrics["data"]["counts"] == {
        "train": 180, "val": 60, "test": 60}
    assert {k: len(v["loss"]) for k, v in metrics["history"].items()} == {"frozen": 1, "fine_tune": 1}
    assert metrics["params"]["trainable_frozen"] == 1280 * 5 + 5
    assert metrics["fine_tune_from"] == {"index": 100, "layer": "block_11_expand_relu"}
    for key in ("val_accuracy_frozen", "val_accuracy_finetuned", "test_accuracy_frozen", "test_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (metrics["device"], metrics["mixed_precision"]) == ("CPU", False)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Phase 1 left the pretrained base untouched; phase 2 changed only layers 100+, never batch-norm statistics.
    source = BASES["mobilenet_v2"].build(32, 0.35)
    source.load_weights(str(out / "source" / "base.weights.h5"))
    frozen = base_of(keras.models.load_model(out / "frozen.keras"))
    for ours, theirs in zip(base_weights(frozen), base_weights(source)):
        np.testing.assert_array_equal(ours, theirs)
    tuned = base_of(keras.models.load_model(out / "model.keras"))
    changed = {layer.name for layer, before in zip(tuned.layers, source.layers)
               if any(not np.array_equal(a, b) for a, b in zip(base_weights(layer), base_weights(before)))}
    names = [layer.name for layer in tuned.layers]
    assert changed and all(names.index(name) >= 100 for name in changed)
    assert not any(isinstance(tuned.get_layer(name), keras.layers.BatchNormalization) for name in changed)

    # Started again: finished runs are left alone; more fine-tuning epochs resume from the checkpoint.
    again = run_transfer_cli(*args)
    assert again.returncode == 0 and "already finished" in again.stderr
    more = run_transfer_cli(*args[:-6], "--fine-tune-epochs", 2, "--fine-tune-learning-rate", 1e-3,
                            "--batch-size", 32)
    assert more.returncode == 0, more.stderr[-3000:]
    assert "resuming after epoch 2 of 3 (fine_tune phase)" in more.stderr
    assert "pretraining" not in more.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {k: len(v["loss"]) for k, v in metrics["history"].items()} == {"frozen": 1, "fine_tune": 2}


def test_a_run_killed_after_a_checkpoint_resumes_in_its_phase(target_folder, tmp_path):
    """Both phases run on the shared loop: killed after the first epoch's checkpoint, the run resumes there."""
    out = tmp_path / "killed"
    args = ["run", "--base", "mobilenet_v2", "--data", target_folder, "--out", out, "--weights", "none",
            "--input-size", 32, "--alpha", 0.35, "--frozen-epochs", 2, "--fine-tune-epochs", 1, "--batch-size", 32]
    killed = run_transfer_cli(*args, env={**os.environ, "STUDY_FAULT": "transfer.epoch-checkpointed@1"})
    assert killed.returncode == -signal.SIGKILL
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    assert not (out / "metrics.json").exists()
    resumed = run_transfer_cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1 of 3 (frozen phase)" in resumed.stderr
    assert "epoch 1/3" not in resumed.stderr and "epoch 3/3 (fine-tune)" in resumed.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {k: len(v["loss"]) for k, v in metrics["history"].items()} == {"frozen": 2, "fine_tune": 1}
    assert metrics["fine_tune_from"] == {"index": 100, "layer": "block_11_expand_relu"}


def test_inception_both_phases_from_a_weights_file(target_folder, tmp_path):
    keras.utils.set_random_seed(5)
    weights = tmp_path / "inception.weights.h5"
    BASES["inception_v3"].build(75).save_weights(str(weights))
    settings = TransferSettings(base="inception_v3", weights=str(weights), input_size=75, frozen_epochs=1,
                                fine_tune_epochs=1, batch_size=32)
    lines = []
    metrics = run_transfer(settings, str(target_folder), str(tmp_path / "inception"), log=lines.append)
    assert metrics["weights"] == {"kind": "file", "description": f"weights file {weights}", "location": str(weights)}
    assert metrics["params"]["trainable_frozen"] == 2048 * 5 + 5
    assert metrics["params"]["trainable_fine_tune"] == 11_118_597
    assert metrics["fine_tune_from"]["index"] == 249 and metrics["input_shape"] == [75, 75, 3]
    assert any("epoch 2/2 (fine-tune)" in line for line in lines)
    frozen = base_of(keras.models.load_model(tmp_path / "inception" / "frozen.keras"))
    expected = BASES["inception_v3"].build(75)
    expected.load_weights(str(weights))
    for ours, theirs in zip(base_weights(frozen), base_weights(expected)):
        np.testing.assert_array_equal(ours, theirs)

    section = transfer_section({"inception_v3": str(tmp_path / "inception")})
    assert section.table[0][3:6] == ["validation accuracy before fine-tuning",
                                     "validation accuracy after fine-tuning", "test accuracy"]
    assert section.table[1][:3] == ["InceptionV3", "75×75", "file"] and section.table[1][6:] == ["98.06%", "100.00%"]
    assert f"started from weights file {weights}. 1 epoch with the base frozen (10,245 trainable" in section.intro
    assert "then 1 epoch of fine-tuning from layer 249 (conv2d_" in section.intro
    assert list(section.figures) == ["transfer_inception_v3_curves.png"]


def test_image_folder_weights_and_output_on_gcs(gcs_bucket, tiny_data, tmp_path):
    images, weights, out = (f"{gcs_bucket}/images", f"{gcs_bucket}/w/mobilenet.weights.h5", f"{gcs_bucket}/run")
    write_image_folder(tiny_data, images, images_per_class=20, seed=1)
    keras.utils.set_random_seed(2)
    local = tmp_path / "mobilenet.weights.h5"
    base_of(build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35)).save_weights(str(local))
    storage.upload_file(local, weights)
    settings = TransferSettings(base="mobilenet_v2", weights=weights, input_size=32, alpha=0.35, frozen_epochs=1,
                                fine_tune_epochs=1, batch_size=16, cache="disk")
    metrics = run_transfer(settings, images, out, log=lambda line: None)
    assert metrics["weights"]["location"] == weights
    assert metrics["data"]["counts"] == {"train": 60, "val": 20, "test": 20}
    names = set(storage.list_files(out))
    assert {"metrics.json", "model.keras", "frozen.keras", "curves.png", "history.json",
            "checkpoint/model.keras", "checkpoint/state.json"} <= names


def test_a_numpy_dataset_artifact_is_made_rgb_and_resized(tiny_data, tmp_path):
    settings = TransferSettings(base="mobilenet_v2", weights="none", input_size=40, alpha=0.35, classes=(5, 7, 9),
                                frozen_epochs=1, fine_tune_epochs=0, batch_size=64)
    metrics = run_transfer(settings, tiny_data, str(tmp_path / "numpy"), log=lambda line: None)
    assert metrics["data"]["kind"] == "dataset artifact"
    assert metrics["data"]["classes"] == ["Sandal", "Sneaker", "Ankle boot"]
    assert metrics["data"]["counts"] == {"train": 270, "val": 30, "test": 90}
    assert metrics["val_accuracy_finetuned"] is None and metrics["params"]["trainable_fine_tune"] is None
    model = keras.models.load_model(tmp_path / "numpy" / "model.keras")
    assert model.input_shape == (None, 40, 40, 3) and model.output_shape == (None, 3)


# -------------------------------------------------------------------- bad input

def _png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((28, 28), value, np.uint8)).save(path)


def _class_folder(root: Path, classes: dict[str, int]) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            _png(root / name / f"{i}.png", 40 * i % 255)
    return root


def _bad_inputs(tmp_path: Path) -> list[tuple[list, str]]:
    one_class = _class_folder(tmp_path / "one", {"shoes": 5})
    empty_class = _class_folder(tmp_path / "empty", {"shoes": 5, "bags": 0})
    broken = _class_folder(tmp_path / "broken", {"shoes": 5, "bags": 5})
    (broken / "bags" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    split = tmp_path / "split"
    for part, classes in (("train", {"a": 3, "b": 3}), ("val", {"a": 2, "b": 2}), ("test", {"a": 2, "c": 2})):
        _class_folder(split / part, classes)
    good = _class_folder(tmp_path / "good", {"a": 5, "b": 5})
    wrong_weights = tmp_path / "narrow.weights.h5"
    base_of(build_transfer_model("mobilenet_v2", 2, input_size=32, alpha=0.35)).save_weights(str(wrong_weights))
    return [
        (["--data", one_class], "found 1 class folder ('shoes'); expected at least two sub-folders, one per class"),
        (["--data", empty_class], "class folder 'bags' has no images"),
        (["--data", broken], f"{broken}/bags/3.png: unreadable image file"),
        (["--data", split], "class sets differ between splits (train: a, b; val: a, b; test: a, c)"),
        (["--data", good, "--input-size", 31], "input_size=31: MobileNetV2 needs images of at least 32x32 pixels"),
        (["--data", good, "--base", "inception_v3", "--input-size", 74],
         "input_size=74: InceptionV3 needs images of at least 75x75 pixels"),
        (["--data", good, "--weights", wrong_weights, "--alpha", 1.0],
         "weights file narrow.weights.h5 does not fit mobilenet_v2"),
        (["--data", good, "--weights", tmp_path / "missing.weights.h5"], "missing.weights.h5: no such file"),
        (["--data", good, "--weights", "source"], "weights 'source' needs source data"),
    ]


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    for i, (args, message) in enumerate(_bad_inputs(tmp_path)):
        defaults = {"--base": "mobilenet_v2", "--weights": "none", "--input-size": 32}
        for flag, value in defaults.items():
            if flag not in args:
                args += [flag, value]
        out = tmp_path / f"out{i}"
        result = run_transfer_cli("run", "--out", out, "--frozen-epochs", 1, "--fine-tune-epochs", 1, *args)
        assert_user_error(result, message)
        assert not (out / "metrics.json").exists()

    stale = tmp_path / "stale"  # source weights made with other settings are not reused silently
    (stale / "source").mkdir(parents=True)
    (stale / "source" / "source.json").write_text(json.dumps({"settings": {"base": "inception_v3"}}))
    result = run_transfer_cli("run", "--out", stale, "--base", "mobilenet_v2", "--input-size", 32, "--data",
                              tmp_path / "good", "--weights", "source", "--source-data", tmp_path)
    assert_user_error(result, "holds source-task weights made with other settings")


# ------------------------------------------------------------------------- KFP

def test_kfp_components_run_locally_on_the_cpu_and_compile_with_gpu_settings(tmp_path, fmnist_dir):
    import warnings

    import yaml
    from kfp import compiler, dsl, local

    from pipelines.cluster import ClusterOptions, apply_cluster_settings
    from pipelines.steps.data import prepare_data
    from pipelines.steps.transfer import prepare_transfer_images, transfer_learning

    settings = {"target": {"classes": [5, 6, 7, 8, 9], "images_per_class": 30, "seed": 42},
                "weights": "source", "frozen_epochs": 1, "fine_tune_epochs": 1, "batch_size": 32,
                "source": {"classes": [0, 1, 2, 3, 4], "images": 200, "epochs": 1},
                "bases": {"mobilenet_v2": {"input_size": 32, "alpha": 0.35}}}
    options = ClusterOptions(gpu_node_value="nvidia-l4")

    @dsl.pipeline(name="transfer-check")
    def transfer_check(transfer_settings: dict) -> dsl.Model:
        data = prepare_data(train_size=1000, test_size=300, seed=7)
        images = prepare_transfer_images(dataset=data.outputs["dataset"], transfer_settings=transfer_settings)
        task = transfer_learning(base="mobilenet_v2", images=images.outputs["images"],
                                 source=data.outputs["dataset"], transfer_settings=transfer_settings)
        apply_cluster_settings(task, options, gpu=True, retries=2)  # what the study pipeline does on a cluster
        return task.outputs["run"]

    compiler.Compiler().compile(transfer_check, str(tmp_path / "pipeline.yaml"))
    docs = list(yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text()))
    spec = docs[0]["deploymentSpec"]["executors"]["exec-transfer-learning"]["container"]
    accelerator = spec["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/gpu", "1")
    assert spec["image"].split("/")[-1].startswith("trainer-gpu:")
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-transfer-learning"]
    assert platform["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert platform["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]

    warnings.filterwarnings("ignore", message=".*non-Python base image.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    with pytest.warns(UserWarning, match=r"'transfer-learning': settings \[.*'accelerator'.*\] have no effect"):
        run = transfer_check(transfer_settings=settings)  # kfp.local ignores the GPU request: this CPU runs it
    folder = Path(run.output.path)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["weights"]["kind"] == "source" and metrics["device"] == "CPU"
    assert metrics["data"]["counts"] == {"train": 90, "val": 30, "test": 30}
    (executor_output,) = (tmp_path / "root").glob("*/transfer-learning/executor_output.json")
    artifacts = json.loads(executor_output.read_text())["artifacts"]
    logged = artifacts["metrics"]["artifacts"][0]["metadata"]
    assert {"val_accuracy_frozen", "val_accuracy_finetuned", "test_accuracy", "trainable_params_frozen"} <= set(logged)
    curves = Path(artifacts["curves"]["artifacts"][0]["uri"].replace("file://", "", 1))
    assert curves.read_bytes()[:4] == b"\x89PNG"
