"""The GPU study's worker tasks, run here in-process on a tiny dataset: a trial's row and a failed trial's."""

import json

import pytest

from bench.gpu_study_workers import run_task

pytestmark = pytest.mark.slow


def test_a_trial_task_reports_its_trial_and_a_failed_one_its_error(tiny_data, tmp_path):
    config = {"optimizer": "Adam", "learning_rate": None, "activations": ("relu",) * 4, "filters": (32, 32, 64, 64),
              "epochs": 2, "batch_size": 128, "seed": 1, "bn_momentum": 0.99, "train_images": None}
    task = {"name": "optimizer-06", "stage": "optimizer", "index": 6, "config": config, "data": tiny_data,
            "output": str(tmp_path / "trial"), "log": str(tmp_path / "logs" / "optimizer-06.log"),
            "evaluate": True, "no_checkpoints": False, "dtype_policy": "float32"}
    row = run_task(task)
    assert "error" not in row, row.get("traceback")
    metrics = json.loads((tmp_path / "trial" / "metrics.json").read_text())
    assert row["objective"] == metrics["best"]["val_accuracy"] and row["best_epoch"] == metrics["best"]["epoch"]
    assert len(row["epoch_seconds"]) == 2 and row["wall_s"] == pytest.approx(row["end"] - row["start"])
    assert 0.0 <= row["test_accuracy"] <= 1.0
    log = (tmp_path / "logs" / "optimizer-06.log").read_text()
    assert "epoch=2 " in log and "val_accuracy=" in log  # the trial's Katib lines went to its log
    failed = run_task({**task, "data": str(tmp_path / "no-such-dataset"), "output": str(tmp_path / "trial-2")})
    assert failed["error"] and "objective" not in failed and "Traceback" in failed["traceback"]
    assert failed["wall_s"] >= 0
