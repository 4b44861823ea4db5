"""Metrics from a trial's TensorBoard event files, read the way Katib's TensorFlowEvent collector reads them.

pkg/metricscollector/v1beta1/tfevent-metricscollector/tfevent_loader.py at
v0.19.0: once the trial has ended, every file under the collector's directory is
loaded with TensorBoard's ``EventAccumulator`` (no size limit); files it cannot
load are skipped. A metric name ``test/accuracy`` takes the tags that *start
with* ``accuracy`` in event files whose folder ends with ``test``; a name
without ``/`` takes tags starting with it in any folder (``_should_consider``).
Tensor summaries (what ``tf.summary.scalar`` writes in TF2) come first, then
old-style simple values; a value's text is ``str()`` of the tensor as an array,
or of the scalar, as Katib records it.

TensorBoard's own event reader is used, so no TensorFlow import is needed.
Katib walks with ``os.walk`` in the filesystem's order; here the files are
sorted, so a run is repeatable.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path

from katib.backends.local.metrics import MetricReport


def should_consider(tag: str, metric_name: str, event_file: str) -> bool:
    """Katib's _should_consider: does ``tag`` in ``event_file`` report ``metric_name``?"""
    parts = metric_name.split("/")
    parent = os.path.dirname(metric_name) if len(parts) >= 2 else os.path.dirname(event_file)
    return tag.startswith(parts[-1]) and os.path.dirname(event_file).endswith(parent)


def read_event_files(directory: Path, metric_names: Sequence[str]) -> list[MetricReport]:
    """Every report of ``metric_names`` in the event files under ``directory``."""
    reports: list[MetricReport] = []
    for root, _dirs, files in sorted(os.walk(directory)):
        for name in sorted(files):
            reports += _file_reports(os.path.join(root, name), metric_names)
    return reports


def without_tensorflow() -> None:
    """Make TensorBoard use its own TensorFlow stub, unless TensorFlow is loaded already.

    tensorboard/compat/__init__.py imports TensorFlow on first use when it is
    installed (seconds, on every sweep), unless ``tensorboard.compat.notf`` can
    be imported: its documented switch (//tensorboard/compat:no_tensorflow) to the
    stub, which reads event files just as well.
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _file_reports(event_file: str, metric_names: Sequence[str]) -> list[MetricReport]:
    without_tensorflow()
    # TensorBoard is imported here: a sweep with another collector never pays for it.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.tag_types import SCALARS, TENSORS
    from tensorboard.util.tensor_util import make_ndarray

    try:
        accumulator = EventAccumulator(event_file, size_guidance={SCALARS: 0, TENSORS: 0})
        accumulator.Reload()
        tags = accumulator.Tags()
    except Exception:  # Katib logs "Unexpected error" and goes on with the next file
        return []
    reports = []
    for tag in tags[TENSORS]:
        for metric in metric_names:
            if should_consider(tag, metric, event_file):
                for event in accumulator.Tensors(tag):
                    reports += _report(metric, make_ndarray(event.tensor_proto))
    for tag in tags[SCALARS]:
        for metric in metric_names:
            if should_consider(tag, metric, event_file):
                for event in accumulator.Scalars(tag):
                    reports += _report(metric, event.value)
    return reports


def _report(metric: str, value: object) -> list[MetricReport]:
    text = str(value)
    try:
        return [MetricReport(metric, float(text), text)]
    except ValueError:
        return []  # a tensor that is not one number (Katib would store its text; nothing to fold)
