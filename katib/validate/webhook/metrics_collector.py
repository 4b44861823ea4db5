"""validateMetricsCollector: the collector kind and the source it reads metrics from.

pkg/webhook/v1beta1/experiment/validator/validator.go at v0.19.0
(validateMetricsCollector), reading each source field left out through the
defaults that experiment_defaults.go fills in (katib.validate.defaults).
"""

from __future__ import annotations

import re

from katib.backends.local.katib_api import COLLECTOR_KINDS, FILE_FORMATS
from katib.validate.defaults import (
    DEFAULT_COLLECTOR_KIND,
    FILE_SOURCE_DEFAULTS,
    PROMETHEUS_SOURCE_DEFAULTS,
    TFEVENT_SOURCE_DEFAULTS,
)
from katib.validate.values import Problems, is_absolute, is_int, show, to_int


def check_metrics_collector(spec: dict) -> Problems:
    path = "spec.metricsCollectorSpec"
    collector_spec = spec.get("metricsCollectorSpec")
    if collector_spec is None:
        return []  # defaults to the StdOut collector, which needs nothing more
    if not isinstance(collector_spec, dict):
        return [f"{path}: {show(collector_spec)}; expected a mapping with collector and source"]
    collector = collector_spec.get("collector")
    if collector is None:
        kind = DEFAULT_COLLECTOR_KIND
    elif not isinstance(collector, dict):
        return [f"{path}.collector: {show(collector)}; expected a mapping with kind"]
    else:
        kind = collector.get("kind")
    source = collector_spec.get("source")
    if source is not None and not isinstance(source, dict):
        return [f"{path}.source: {show(source)}; expected a mapping"]
    source = source or {}
    # Katib 0.17 renamed the "None" kind Push: it is now an unknown kind, so it gets its own hint.
    if kind == "None":
        return [f"{path}.collector.kind: 'None'; Katib renamed it Push, expected one of {', '.join(COLLECTOR_KINDS)}"]
    if kind not in COLLECTOR_KINDS:
        return [f"{path}.collector.kind: {show(kind)}; expected one of {', '.join(COLLECTOR_KINDS)}"]
    problems: Problems = []
    if kind == "File":
        problems += _check_file_source(source)
    elif kind == "TensorFlowEvent":
        problems += _check_tfevent_source(source)
    elif kind == "PrometheusMetric":
        problems += _check_prometheus_source(source)
    elif kind == "Custom":
        problems += _check_custom_collector(collector or {}, source)
    # Katib's webhook checks filters only for collectors other than StdOut/Push; the
    # StdOut collector applies them too, so a bad one is checked for every kind.
    problems += _check_filter(source)
    return problems


def _file_system_path(source: dict) -> tuple[dict, Problems]:
    fsp = source.get("fileSystemPath")
    if fsp is None:
        return {}, []
    if not isinstance(fsp, dict):
        return {}, [
            f"spec.metricsCollectorSpec.source.fileSystemPath: {show(fsp)}; expected a mapping with path and kind"
        ]
    return fsp, []


def _check_file_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.fileSystemPath"
    fsp, problems = _file_system_path(source)
    if problems:
        return problems
    if fsp.get("kind", FILE_SOURCE_DEFAULTS["kind"]) != "File":
        problems.append(f"{path}.kind: {show(fsp.get('kind'))}; collector File expected kind File")
    file_path = fsp.get("path", FILE_SOURCE_DEFAULTS["path"])
    if not is_absolute(file_path):
        problems.append(f"{path}.path: {show(file_path)}; collector File expected an absolute file path")
    file_format = fsp.get("format", FILE_SOURCE_DEFAULTS["format"])
    if file_format not in FILE_FORMATS:
        problems.append(f"{path}.format: {show(file_format)}; expected TEXT or JSON")
    elif file_format == "JSON" and source.get("filter") is not None:
        problems.append(
            "spec.metricsCollectorSpec.source.filter: set with format JSON; expected no filter for JSON metrics files"
        )
    return problems


def _check_tfevent_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.fileSystemPath"
    fsp, problems = _file_system_path(source)
    if problems:
        return problems
    if fsp.get("kind", TFEVENT_SOURCE_DEFAULTS["kind"]) != "Directory":
        problems.append(f"{path}.kind: {show(fsp.get('kind'))}; collector TensorFlowEvent expected kind Directory")
    directory = fsp.get("path", TFEVENT_SOURCE_DEFAULTS["path"])
    if not is_absolute(directory):
        problems.append(
            f"{path}.path: {show(directory)}; collector TensorFlowEvent expected an absolute directory path"
        )
    if fsp.get("format"):
        problems.append(f"{path}.format: {show(fsp['format'])}; collector TensorFlowEvent expected no format")
    return problems


def _check_prometheus_source(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.httpGet"
    http_get = source.get("httpGet") or {}
    if not isinstance(http_get, dict):
        return [f"{path}: {show(http_get)}; expected a mapping with port and path"]
    problems: Problems = []
    port = http_get.get("port", PROMETHEUS_SOURCE_DEFAULTS["port"])
    port_number = port if is_int(port) else to_int(port) if isinstance(port, str) else None
    if port_number is None or port_number <= 0:
        problems.append(f"{path}.port: {show(port)}; expected a positive port number")
    url_path = http_get.get("path", PROMETHEUS_SOURCE_DEFAULTS["path"])
    if not isinstance(url_path, str) or not url_path.startswith("/"):
        problems.append(f"{path}.path: {show(url_path)}; expected a path starting with '/'")
    return problems


def _check_custom_collector(collector: dict, source: dict) -> Problems:
    problems: Problems = []
    if not isinstance(collector.get("customCollector"), dict):
        problems.append(
            f"spec.metricsCollectorSpec.collector.customCollector: {show(collector.get('customCollector'))}; "
            "collector Custom expected a container spec"
        )
    fsp, fsp_problems = _file_system_path(source)
    problems += fsp_problems
    if fsp and (not is_absolute(fsp.get("path")) or fsp.get("kind") not in ("File", "Directory")):
        problems.append(
            f"spec.metricsCollectorSpec.source.fileSystemPath: path {show(fsp.get('path'))}, kind "
            f"{show(fsp.get('kind'))}; expected an absolute path and kind File or Directory"
        )
    return problems


def _check_filter(source: dict) -> Problems:
    path = "spec.metricsCollectorSpec.source.filter.metricsFormat"
    filter_spec = source.get("filter")
    if filter_spec is None:
        return []
    formats = filter_spec.get("metricsFormat") if isinstance(filter_spec, dict) else None
    if formats is None:
        return []
    if not isinstance(formats, list):
        return [f"{path}: {show(formats)}; expected a list of regular expressions"]
    problems: Problems = []
    for i, pattern in enumerate(formats):
        if not isinstance(pattern, str):
            problems.append(f"{path}[{i}]: {show(pattern)}; expected a regular expression string")
            continue
        try:
            groups = re.compile(pattern).groups
        except re.error as err:
            problems.append(f"{path}[{i}]: {show(pattern)} is not a valid regular expression ({err})")
            continue
        # The collector reads the metric name from the first group and the value from the second.
        if groups < 2:
            problems.append(
                f"{path}[{i}]: {show(pattern)} has {groups} capture group(s); expected two, "
                "the metric name then its value"
            )
    return problems
