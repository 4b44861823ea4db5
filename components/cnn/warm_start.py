"""Population based training's hand-over for the CNN trial (``study train --warm-start FOLDER``).

Katib's pbt algorithm gives each trial a folder, mounted at the Experiment's ``suggestion_trial_dir``,
that starts as a copy of its parent trial's folder (``katib.backends.local.pbt`` does the same here). A
trial started with that folder as ``--warm-start``:

- starts from the weights its parent left there, if any, with its own hyperparameters (for the study's
  sweeps: other activation functions or another optimizer on the parent's weights);
- trains its ``--epochs`` more, drawing each epoch's image order as the lineage's next epoch would;
- leaves its own weights and record there when it has trained, for its children.

Only the weights pass on: the optimizer starts afresh (a child may use another one). A parent whose
weights have other shapes (other filters) or that trained on another dataset is refused, since its
weights cannot, or should not, be the child's start.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras

from components.cnn.hparams import TrialConfig
from components.core import storage
from components.core.errors import UserError

WEIGHTS, RECORD = "pbt.weights.h5", "pbt.json"


def lineage_start(folder: str, config: TrialConfig, data_id: str, trial: str) -> tuple[int, bool]:
    """(epochs the lineage trained before this trial, whether ``folder`` holds a parent's weights);
    refused where the parent's weights cannot start this trial. A trial started again after it left
    its own weights there (killed before it finished) gets its start of the first time."""
    record_uri = storage.join(folder, RECORD)
    if not storage.exists(record_uri):
        return 0, False
    record = json.loads(storage.read_text(record_uri))
    if record["last_trial"] == trial:
        return record["start_epochs"], False
    if list(record["filters"]) != list(config.filters):
        raise UserError(f"--warm-start {folder}: the parent trial's filters {record['filters']} are not this "
                        f"trial's {list(config.filters)}; its weights have other shapes")
    if record["data"] != data_id:
        raise UserError(f"--warm-start {folder}: the parent trial trained on another dataset")
    return record["start_epochs"] + record["epochs"], True


def load_parent_weights(model: keras.Model, folder: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = storage.download_file(storage.join(folder, WEIGHTS), Path(tmp) / WEIGHTS)
        model.load_weights(str(local))


def leave_weights(model: keras.Model, folder: str, config: TrialConfig, data_id: str, start_epochs: int,
                  trial: str) -> None:
    """This trial's weights and record, for its children. The weights go first: a record names
    weights that are there."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / WEIGHTS
        model.save_weights(str(local))
        storage.upload_file(local, storage.join(folder, WEIGHTS))
    storage.write_text(storage.join(folder, RECORD), json.dumps({
        "filters": list(config.filters), "data": data_id, "start_epochs": start_epochs, "epochs": config.epochs,
        "last_trial": trial, "config": config.as_dict()}, indent=1))
