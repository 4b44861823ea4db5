"""TensorBoard scalars and HParams records without TensorFlow.

The trial must run under any Keras backend (JAX and PyTorch machines have no
TensorFlow), so summaries are built as protos with the ``tensorboard``
package alone and written with its own event-file writer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class SummaryLog:
    """One run folder of TensorBoard events: scalars per step and one HParams record."""

    def __init__(self, logdir: str | Path):
        Path(logdir).mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(logdir))

    def _add(self, summary: summary_pb2.Summary, step: int = 0) -> None:
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        summary = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=name, simple_value=float(v)) for name, v in values.items()
        ])
        self._add(summary, step)
        self._writer.flush()

    def hparams(self, values: Mapping[str, object], trial_id: str | None = None) -> None:
        """The HParams plugin's session record: this run's hyperparameter values."""
        clean = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in values.items()}
        self._add(hp.hparams_pb(clean, trial_id=trial_id))
        self._writer.flush()

    def hparams_config(self, domains: Mapping[str, list], metrics: list[str]) -> None:
        """The experiment-level record: which hyperparameters and metrics the dashboard shows."""
        hparams = [hp.HParam(name, hp.Discrete(values)) for name, values in domains.items()]
        self._add(hp.hparams_config_pb(hparams, [hp.Metric(m) for m in metrics]))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
