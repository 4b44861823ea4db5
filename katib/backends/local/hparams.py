"""The sweep in TensorBoard's HParams view, written without TensorFlow.

TensorBoard's own protobufs and event-file writer are enough: the HParams
plugin's ``hparams_config_pb`` (the search space and metrics, once, at the log
root) and ``hparams_pb`` (one trial's values, in that trial's folder) return
Summary protos, and each trial's folder also gets its objective per step and
its final additional metrics as scalars. The event files are written with
TensorBoard's ``RecordWriter`` onto a plain file: its ``EventFileWriter``
goes through ``tf.io.gfile`` and so imports TensorFlow (seconds) when present.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.katib_api import CATEGORICAL, DISCRETE, INT
from katib.backends.local.records import TrialRecord
from katib.backends.local.search_space import parameter_type

TENSORBOARD_FOLDER = "tensorboard"


def write_hparams(run_dir: Path, records: Sequence[TrialRecord], spec: ExperimentSpec, metric_values: dict) -> Path:
    """Rewrite ``run_dir/tensorboard`` for these trials; returns that folder.

    Event files only grow, so the folder is built anew beside the old one and
    swapped in: a resumed sweep does not show its early trials twice.
    ``metric_values`` maps trial name -> {metric name: value} for the final scalars.
    """
    from tensorboard.plugins.hparams import summary_v2 as hp

    target = run_dir / TENSORBOARD_FOLDER
    staging = run_dir / f".{TENSORBOARD_FOLDER}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    hparams = {p["name"]: hp.HParam(p["name"], _domain(hp, p)) for p in spec.parameters}
    metrics = [hp.Metric(name) for name in spec.metric_names]
    _write_events(staging, [_summary_event(hp.hparams_config_pb(hparams=list(hparams.values()), metrics=metrics), 0)])
    for record in records:
        if not record.finished:
            continue
        values = {hparams[n]: _hparam_value(p, record.assignment_values[n]) for n, p in _by_name(spec).items()}
        summaries = [hp.hparams_pb(values, trial_id=record.name)]
        _write_trial(staging / record.name, summaries, record, spec, metric_values.get(record.name, {}))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _write_trial(
    folder: Path, summaries: list[Any], record: TrialRecord, spec: ExperimentSpec, final: dict[str, float | None]
) -> None:
    events = [_summary_event(summary, step=0) for summary in summaries]
    events += [
        _scalar_event(spec.objective_metric, value, step)
        for step, value in enumerate(record.objective_history, start=1)
    ]
    last_step = max(len(record.objective_history), 1)
    events += [
        _scalar_event(name, final[name], last_step) for name in spec.additional_metrics if final.get(name) is not None
    ]
    _write_events(folder, events)


def _write_events(folder: Path, events: list[Any]) -> None:
    """One TensorBoard event file in ``folder``: a version header, then ``events``."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
    with open(path, "wb") as file:
        writer = RecordWriter(file)
        header = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        for event in [header, *events]:
            writer.write(event.SerializeToString())


def _summary_event(summary: Any, step: int) -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)


def _scalar_event(tag: str, value: float, step: int) -> Any:
    from tensorboard.compat.proto import summary_pb2

    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
    return _summary_event(summary, step)


def _domain(hp: Any, parameter: dict[str, Any]) -> Any:
    kind = parameter_type(parameter)
    space = parameter.get("feasibleSpace") or {}
    if kind == CATEGORICAL:
        return hp.Discrete([str(v) for v in space["list"]])
    if kind == DISCRETE:
        return hp.Discrete([float(v) for v in space["list"]])
    if kind == INT:
        return hp.IntInterval(int(float(space["min"])), int(float(space["max"])))
    return hp.RealInterval(float(space["min"]), float(space["max"]))


def _hparam_value(parameter: dict[str, Any], text: str) -> Any:
    """The assignment string as the type of the parameter's HParams domain."""
    kind = parameter_type(parameter)
    if kind == CATEGORICAL:
        return text
    if kind == INT:
        return int(text)
    return float(text)


def _by_name(spec: ExperimentSpec) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in spec.parameters}
