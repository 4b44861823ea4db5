"""``spec.metricsCollectorSpec`` as the local backend reads it, with Katib's defaults.

Katib's defaulting webhook (experiment_defaults.go, setDefaultMetricsCollector)
gives the StdOut collector when none is named, and a File or TensorFlowEvent
collector its default path; the pod webhook (pkg/webhook/v1beta1/pod/utils.go,
getMountPath) then mounts a volume shared by the trial and the collector at that
path: its folder for a File source, the folder itself for a Directory source.
Locally that volume is a folder of the trial's own (:mod:`katib.backends.local.mounts`).

PrometheusMetric and Push have no local stand-in and are refused here, before
any trial runs, each with the reason.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from components.core.errors import UserError
from katib.backends.local.katib_api import (
    CUSTOM_COLLECTOR,
    DIRECTORY_KIND,
    FILE_COLLECTOR,
    FILE_FORMATS,
    FILE_KIND,
    FILE_SOURCE_DEFAULTS,
    PROMETHEUS_COLLECTOR,
    PUSH_COLLECTOR,
    STDOUT_COLLECTOR,
    TFEVENT_COLLECTOR,
    TFEVENT_SOURCE_DEFAULTS,
)

WHERE = "spec.metricsCollectorSpec"
LOCAL_KINDS = (STDOUT_COLLECTOR, FILE_COLLECTOR, TFEVENT_COLLECTOR, CUSTOM_COLLECTOR)

# Why a kind cannot run here: said in the one line that refuses it.
_NO_LOCAL_STAND_IN = {
    PROMETHEUS_COLLECTOR: "it scrapes an HTTP endpoint of the trial's pod, and locally a trial has no pod"
                          " address to scrape",
    PUSH_COLLECTOR: "trials push their metrics to Katib's DB manager (kubeflow-katib's report_metrics), which"
                    " does not run locally",
}


@dataclass(frozen=True)
class CollectorSpec:
    """Which collector reads a trial's metrics, and from where (paths as the container sees them)."""

    kind: str = STDOUT_COLLECTOR
    filters: tuple[str, ...] = ()
    path: str | None = None
    path_kind: str | None = None
    file_format: str = FILE_SOURCE_DEFAULTS["format"]
    custom_container: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def mount_path(self) -> str | None:
        """Where the shared volume is mounted: a File source's folder, or the Directory itself (getMountPath)."""
        if self.path is None:
            return None
        return posixpath.dirname(self.path.rstrip("/")) if self.path_kind == FILE_KIND else self.path

    @property
    def reads_output(self) -> bool:
        """Only the StdOut collector reads the training container's output."""
        return self.kind == STDOUT_COLLECTOR

    @property
    def applies_stop_rules(self) -> bool:
        """Katib's StdOut and File collectors apply early-stopping rules; the TensorFlowEvent collector takes
        none (cmd/metricscollector/v1beta1/tfevent-metricscollector/main.py: "TODO: Add early stopping
        flags"), and a Custom collector is the user's own program."""
        return self.kind in (STDOUT_COLLECTOR, FILE_COLLECTOR)


def read_collector(collector_spec: Any) -> CollectorSpec:
    """The Experiment's metricsCollectorSpec, defaulted as Katib does; refuses kinds with no local stand-in."""
    collector_spec = collector_spec or {}
    kind = (collector_spec.get("collector") or {}).get("kind") or STDOUT_COLLECTOR
    source = collector_spec.get("source") or {}
    filters = tuple(str(f) for f in (source.get("filter") or {}).get("metricsFormat") or ())
    if kind in _NO_LOCAL_STAND_IN:
        raise UserError(
            f"{WHERE}.collector.kind is {kind!r}, which the local backend cannot run: {_NO_LOCAL_STAND_IN[kind]};"
            f" use one of {', '.join(LOCAL_KINDS)}"
        )
    if kind not in LOCAL_KINDS:
        raise UserError(f"{WHERE}.collector.kind is {kind!r}; expected one of {', '.join(LOCAL_KINDS)}")
    fsp = source.get("fileSystemPath") or {}
    if kind == FILE_COLLECTOR:
        file_format = str(fsp.get("format") or FILE_SOURCE_DEFAULTS["format"])
        if file_format not in FILE_FORMATS:
            raise UserError(f"{WHERE}.source.fileSystemPath.format is {file_format!r}; expected TEXT or JSON")
        return CollectorSpec(kind, filters, _absolute(fsp.get("path") or FILE_SOURCE_DEFAULTS["path"]),
                             FILE_KIND, file_format)
    if kind == TFEVENT_COLLECTOR:
        return CollectorSpec(kind, filters, _absolute(fsp.get("path") or TFEVENT_SOURCE_DEFAULTS["path"]),
                             DIRECTORY_KIND)
    if kind == CUSTOM_COLLECTOR:
        container = (collector_spec.get("collector") or {}).get("customCollector")
        _check_custom_container(container)
        path = _absolute(fsp["path"]) if fsp.get("path") else None
        return CollectorSpec(kind, filters, path, fsp.get("kind") or FILE_KIND if path else None,
                             custom_container=container)
    return CollectorSpec(kind, filters)


def _check_custom_container(container: Any) -> None:
    where = f"{WHERE}.collector.customCollector"
    if not isinstance(container, dict):
        raise UserError(f"{where} is {container!r}; collector Custom needs a container spec")
    if not container.get("command"):
        # Katib's own example (examples/v1beta1/metrics-collector/custom-metrics-collector.yaml) sets only
        # image and args: its image's entrypoint runs. Locally no image runs, so nothing would.
        raise UserError(
            f"{where} ({container.get('name')!r}) has no command; locally no image runs, so the local backend"
            " runs the collector's command + args after the trial and needs an explicit command"
        )


def _absolute(path: Any) -> str:
    text = str(path)
    if not text.startswith("/"):
        raise UserError(f"{WHERE}.source.fileSystemPath.path is {text!r}; expected an absolute path")
    return text
