"""A finished search's output, ``nas.json`` written last as the mark of a finished search:

- ``model.keras``        the best model (load it with :func:`load_best_model`)
- ``model_summary.txt``  its layers (name, type, output shape, parameters) and the three parameter counts
- ``trials.csv``         every trial: status, validation accuracy, worker, hyperparameters
- ``nas.json``           settings, the trials, the model's layers and parameters, test accuracy,
                         search wall time
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from components.core import storage
from components.core.errors import UserError
from components.core.settings import OBJECTIVE_METRIC
from components.nas.config import NasConfig
from components.nas.layout import MODEL_FILE, MODEL_SUMMARY_FILE, RESULT_FILE, TRIAL_RUN_FILE, TRIALS_FILE
from components.nas.roles import Role


def export_best(auto_model, config: NasConfig, data, role: Role, output_uri: str, search_uri: str,
                project_dir: Path, search_seconds: float, log: Callable[[str], None]) -> dict:
    """Write the best model, its summary, the trial table and ``nas.json`` (last) to the output."""
    records = trial_records(auto_model.tuner.oracle, project_dir)
    completed = [r for r in records if r[OBJECTIVE_METRIC] is not None]
    if not completed:
        raise UserError(f"nas: no trial produced {OBJECTIVE_METRIC}; see the trial folders in {search_uri}")
    best = max(completed, key=lambda r: r[OBJECTIVE_METRIC])
    # AutoKeras saved the best model at the end of the search (the best trial's best epoch); it is
    # exported as saved: loading and saving it again would add the optimizer's slots (3x the size).
    best_model_path = auto_model.tuner.best_model_path
    model = load_best_model(best_model_path, compile=False)
    x_test, y_test = data.images("test"), np.asarray(data.y["test"])
    test_accuracy = _test_accuracy(model, x_test, y_test)
    storage.upload_file(best_model_path, storage.join(output_uri, MODEL_FILE))
    description = describe_model(model)
    storage.write_text(storage.join(output_uri, MODEL_SUMMARY_FILE), model_summary_text(description))
    storage.write_text(storage.join(output_uri, TRIALS_FILE), trials_csv(records))
    import keras

    result = {
        "config": config.as_dict(),
        "role": role.kind,
        "search": search_uri,
        "objective": OBJECTIVE_METRIC,
        "trials": records,
        "best_trial": best,
        "model": description,
        "params": description["params"],
        "test_accuracy": test_accuracy,
        "test_images": int(len(y_test)),
        "search_seconds": search_seconds,
        "keras_backend": keras.backend.backend(),
    }
    storage.write_text(storage.join(output_uri, RESULT_FILE), json.dumps(result, indent=2))
    log(f"nas: best trial {best['trial_id']} {OBJECTIVE_METRIC}={best[OBJECTIVE_METRIC]:.4f}; "
        f"{result['params']['total']:,} parameters; test accuracy {test_accuracy:.4f}; "
        f"search {search_seconds:.0f} s -> {output_uri}")
    return result


def _test_accuracy(model, x_test: np.ndarray, y_test: np.ndarray, batch_size: int = 256) -> float:
    predicted = np.argmax(model.predict(x_test, batch_size=batch_size, verbose=0), axis=1)
    return float(np.mean(predicted == y_test))


def describe_model(model) -> dict:
    """Layers (name, type, output shape, parameters) and the three parameter counts."""
    from components.cnn.models import param_counts

    layers = []
    for layer in model.layers:
        try:
            shape = str(tuple(None if d is None else int(d) for d in layer.output.shape))
        except (AttributeError, ValueError, TypeError):
            shape = ""
        layers.append({"name": layer.name, "type": type(layer).__name__, "output_shape": shape,
                       "params": int(layer.count_params()) if layer.built else 0})
    return {"name": model.name, "layers": layers, "params": param_counts(model)}


def model_summary_text(description: dict) -> str:
    """A plain-text table of :func:`describe_model` (Keras' own summary is cut to the console's width)."""
    rows = [(f"{layer['name']} ({layer['type']})", layer["output_shape"], f"{layer['params']:,}")
            for layer in description["layers"]]
    header = ("layer (type)", "output shape", "params")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}".rstrip()  # noqa: E731
    params = description["params"]
    return "\n".join([f"model {description['name']}", line(header), "-" * (sum(widths) + 4),
                      *map(line, rows), "-" * (sum(widths) + 4),
                      f"total params: {params['total']:,}", f"trainable params: {params['trainable']:,}",
                      f"non-trainable params: {params['non_trainable']:,}"]) + "\n"


def trial_records(oracle, project_dir: Path) -> list[dict]:
    """Every trial the oracle knows, in id order, with the worker that ran it."""
    records = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        run_file = project_dir / f"trial_{trial_id}" / TRIAL_RUN_FILE
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
        has_objective = trial.metrics.exists(OBJECTIVE_METRIC)
        records.append({
            "trial_id": trial_id,
            "status": str(trial.status),
            OBJECTIVE_METRIC: float(trial.metrics.get_best_value(OBJECTIVE_METRIC)) if has_objective else None,
            "best_epoch": None if trial.best_step is None else int(trial.best_step) + 1,
            "tuner_id": run.get("tuner_id"),
            "seconds": run.get("seconds"),
            "hyperparameters": {k: _plain(v) for k, v in trial.hyperparameters.values.items()},
        })
    return records


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def trials_csv(records: list[dict]) -> str:
    names = sorted({name for r in records for name in r["hyperparameters"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "status", OBJECTIVE_METRIC, "best_epoch", "worker", "seconds", *names])
    for r in records:
        objective = "" if r[OBJECTIVE_METRIC] is None else f"{r[OBJECTIVE_METRIC]:.4f}"
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        writer.writerow([r["trial_id"], r["status"], objective, r["best_epoch"] or "", r["tuner_id"] or "",
                         seconds, *(r["hyperparameters"].get(n, "") for n in names)])
    return out.getvalue()


def load_best_model(path: str | Path, compile: bool = True):
    """A model the search exported: AutoKeras' custom layers are needed to read it back."""
    import autokeras as ak
    import keras

    with warnings.catch_warnings():
        # The export holds no optimizer slots (the model was never stepped after loading its
        # checkpoint); Keras builds them on load and says so. The weights are all there.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.models.load_model(path, custom_objects=ak.CUSTOM_OBJECTS, compile=compile)
