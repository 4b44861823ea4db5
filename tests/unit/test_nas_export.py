"""components/nas/export.py: the trial table and the model summary the search writes; no Keras."""

import csv
import io

from components.nas.export import model_summary_text, trials_csv


def test_trial_table_has_a_row_per_trial_and_a_column_per_hyperparameter():
    records = [
        {"trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.91234, "best_epoch": 3, "tuner_id": "tuner0",
         "seconds": 12.34, "hyperparameters": {"optimizer": "adam", "block/version": "resnet50"}},
        {"trial_id": "1", "status": "FAILED", "val_accuracy": None, "best_epoch": None, "tuner_id": None,
         "seconds": None, "hyperparameters": {"optimizer": "sgd"}},
    ]
    rows = list(csv.DictReader(io.StringIO(trials_csv(records))))
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert (rows[0]["val_accuracy"], rows[0]["worker"], rows[0]["block/version"]) == ("0.9123", "tuner0", "resnet50")
    assert rows[1]["val_accuracy"] == "" and rows[1]["block/version"] == ""


def test_model_summary_lists_layers_and_the_three_counts():
    text = model_summary_text({"name": "m", "params": {"total": 13, "trainable": 10, "non_trainable": 3},
                               "layers": [{"name": "norm", "type": "Normalization", "output_shape": "(None, 28)",
                                           "params": 3},
                                          {"name": "dense", "type": "Dense", "output_shape": "(None, 10)",
                                           "params": 10}]})
    assert "norm (Normalization)" in text and "dense (Dense)" in text
    assert text.strip().splitlines()[-3:] == ["total params: 13", "trainable params: 10",
                                              "non-trainable params: 3"]
