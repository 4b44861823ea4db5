"""`study train --warm-start FOLDER`: the CNN trial's side of Katib's pbt hand-over.

Katib's pbt service gives each trial a folder at ``suggestion_trial_dir`` that starts as a copy of its
parent's (pkg/suggestion/v1beta1/pbt/service.py, PbtJobQueue.append; pkg/webhook/v1beta1/pod/
inject_webhook.go mounts it); the trial resumes from what its parent left there and leaves its own
(Katib's simple-pbt example does this with a checkpoint file). The copies below stand for the service's.
"""

import json
import shutil

import pytest

from tests.conftest import assert_user_error, run_cli

pytestmark = pytest.mark.slow
COMMON = ("--epochs", "1", "--batch-size", "64", "--seed", "3", "--optimizer", "SGD")


def train(tiny_data, out, folder, *extra):
    result = run_cli("train", "--data", tiny_data, "--output", out, "--warm-start", folder, *COMMON, *extra)
    assert result.returncode == 0, result.stderr
    return result, json.loads((out / "metrics.json").read_text())


def test_a_child_starts_from_its_parents_weights_with_its_own_settings_and_leaves_its_own(tiny_data, tmp_path):
    import keras

    from components.cnn import warm_start
    from components.cnn.models import build_study_cnn

    parent_folder = tmp_path / "suggestion" / "parent"
    result, _ = train(tiny_data, tmp_path / "parent", parent_folder)
    assert "starting from the parent" not in result.stderr  # the lineage starts here
    record = json.loads((parent_folder / "pbt.json").read_text())
    assert (record["start_epochs"], record["epochs"], record["last_trial"]) == (0, 1, str(tmp_path / "parent"))

    # The child's weights at its start are the parent's final weights, in a model of the child's settings.
    parent_model = keras.models.load_model(tmp_path / "parent" / "model.keras")
    child_model = build_study_cnn(["selu", "relu", "relu", "relu"], [32, 32, 64, 64], input_shape=(28, 28, 1),
                                  num_classes=10)
    warm_start.load_parent_weights(child_model, str(parent_folder))
    assert all((a == b).all() for a, b in zip(parent_model.get_weights(), child_model.get_weights(), strict=True))

    child_folder = tmp_path / "suggestion" / "child"
    shutil.copytree(parent_folder, child_folder)
    result, child = train(tiny_data, tmp_path / "child", child_folder, "--activations", "selu,relu,relu,relu")
    assert f"starting from the parent trial's weights in {child_folder} (1 epochs trained)" in result.stderr
    record = json.loads((child_folder / "pbt.json").read_text())
    assert (record["start_epochs"], record["epochs"]) == (1, 1)
    assert record["config"]["activations"] == ["selu", "relu", "relu", "relu"]
    # The same settings from scratch train something else: the parent's weights were the start.
    _, fresh = train(tiny_data, tmp_path / "fresh", tmp_path / "suggestion" / "fresh", "--activations",
                     "selu,relu,relu,relu")
    assert child["history"]["loss"] != fresh["history"]["loss"]

    # Killed after it left its weights but before it finished, the child started again keeps its start.
    (tmp_path / "child" / "metrics.json").unlink()
    result, _ = train(tiny_data, tmp_path / "child", child_folder, "--activations", "selu,relu,relu,relu")
    assert "resuming after epoch 1 of 1" in result.stderr
    assert json.loads((child_folder / "pbt.json").read_text())["start_epochs"] == 1

    # Its own child's lineage has trained two epochs before it.
    grandchild_folder = tmp_path / "suggestion" / "grandchild"
    shutil.copytree(child_folder, grandchild_folder)
    train(tiny_data, tmp_path / "grandchild", grandchild_folder)
    assert json.loads((grandchild_folder / "pbt.json").read_text())["start_epochs"] == 2


def test_a_parent_with_other_filters_is_refused(tiny_data, tmp_path):
    folder = tmp_path / "suggestion" / "trial"
    train(tiny_data, tmp_path / "parent", folder)
    result = run_cli("train", "--data", tiny_data, "--output", tmp_path / "child", "--warm-start", folder, *COMMON,
                     "--filters", "16,32,64,64")
    assert_user_error(result, "the parent trial's filters [32, 32, 64, 64] are not this trial's [16, 32, 64, 64]")
