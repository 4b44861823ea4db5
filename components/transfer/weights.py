"""Where a transfer run's starting weights come from, and the record of it that metrics.json keeps.

``imagenet`` (the Keras download; the only case that downloads), a path or gs:// URI
of a weights file (air-gapped clusters), ``none``, or ``source``: the base pretrained
in the run folder's ``source/`` (:mod:`components.transfer.pretrain`), reused when the
run is started again with the same source settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from components.core import storage
from components.core.errors import UserError
from components.transfer.pretrain import SOURCE_RECORD, SOURCE_WEIGHTS, pretrain_on_source, source_settings
from components.transfer.settings import TransferSettings

SOURCE_DIR = "source"

Log = Callable[[str], None]


def resolve_weights(settings: TransferSettings, ws: storage.Workspace, scratch: Path,
                    source_data_uri: str | None, log: Log) -> tuple[str | None, dict]:
    """The ``weights`` argument for the model builder, and a record of where the weights came from."""
    kind = settings.weights
    if kind == "none":
        return None, {"kind": "none", "description": "random initialization (no pretrained weights)"}
    if kind == "imagenet":
        return "imagenet", {"kind": "imagenet", "description": "ImageNet (the Keras download)"}
    if kind == "source":
        record = _source_weights(settings, ws, source_data_uri, log)
        return str(ws.path(SOURCE_DIR, SOURCE_WEIGHTS)), {
            "kind": "source", "description": describe_source(record), "source": record}
    if storage.is_gcs(kind):
        local = storage.download_file(kind, scratch / kind.rsplit("/", 1)[-1])  # the name keeps its suffix
    elif Path(kind).is_file():
        local = Path(kind)
    else:
        raise UserError(f"weights file {kind}: no such file")
    return str(local), {"kind": "file", "description": f"weights file {kind}", "location": kind}


def epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def describe_source(record: dict) -> str:
    names = ", ".join(record["class_names"])
    labels = record["classes"]
    contiguous = labels == list(range(labels[0], labels[-1] + 1))
    shown = f"{labels[0]}–{labels[-1]}" if contiguous and len(labels) > 2 else ", ".join(map(str, labels))
    return (f"weights pretrained here on Fashion-MNIST classes {shown} "
            f"({names}): {record['train_images']:,} images, {epochs_text(record['epochs'])}, "
            f"source validation "
            f"accuracy {100 * record['val_accuracy']:.2f}%")


def _source_weights(settings: TransferSettings, ws: storage.Workspace, source_data_uri: str | None,
                    log: Log) -> dict:
    done = ws.path(SOURCE_DIR, SOURCE_RECORD)
    if done.exists():
        record = json.loads(done.read_text())
        if record.get("settings") != source_settings(settings):
            raise UserError(f"{ws.uri}: holds source-task weights made with other settings; "
                            "use a new output location")
        log(f"transfer {settings.base}: reusing the source-task weights in {SOURCE_DIR}/")
        return record
    if not source_data_uri:
        raise UserError("weights 'source' needs source data: a dataset artifact of Fashion-MNIST "
                        "(--source-data, the output of study data)")
    record = pretrain_on_source(settings, source_data_uri, str(ws.path(SOURCE_DIR)), log=log)
    ws.push(f"{SOURCE_DIR}/{SOURCE_WEIGHTS}", f"{SOURCE_DIR}/{SOURCE_RECORD}")
    return record
