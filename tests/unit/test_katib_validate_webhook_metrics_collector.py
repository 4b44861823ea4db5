"""katib.validate.webhook.metrics_collector: the collector kind and the source it reads metrics from.

Rules from Katib v0.19.0 pkg/webhook/v1beta1/experiment/validator/validator.go (validateMetricsCollector).
"""

from __future__ import annotations

import copy

import pytest

from components.core.settings import KATIB_DEFAULT_METRICS_FILTER
from katib.validate import validate_experiment
from tests.fixtures.katib_validate import (
    Break,
    assert_only_problems_about,
    both,
    break_ids,
    del_,
    fixture,
    set_,
)

PROMETHEUS = {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"port": 8080, "path": "/metrics"}}}

BREAKS = [
    Break("collector_kind_unknown", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.collector.kind", "Files"), "collector.kind", ("'Files'",)),
    Break("collector_kind_none_renamed", "sobol.yaml", set_("spec.metricsCollectorSpec.collector.kind", "None"),
          "collector.kind", ("Push",)),
    Break("file_path_relative", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.path", "metrics.log"),
          "fileSystemPath.path", ("absolute", "'metrics.log'")),
    Break("file_kind_directory", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.kind", "Directory"),
          "fileSystemPath.kind", ("kind File",)),
    Break("file_format_unknown", "file-metrics-collector-json.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "CSV"), "fileSystemPath.format", ("'CSV'",)),
    Break("file_json_with_filter", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "JSON"), "filter", ("JSON",)),
    Break("tfevent_kind_file", "tfevent-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.kind", "File"), "fileSystemPath.kind",
          ("Directory",)),
    Break("tfevent_with_format", "tfevent-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.fileSystemPath.format", "TEXT"), "fileSystemPath.format"),
    Break("custom_without_container", "custom-metrics-collector.yaml",
          del_("spec.metricsCollectorSpec.collector.customCollector"), "customCollector"),
    Break("filter_not_a_regex", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.filter.metricsFormat", ["metric=([\\w-+"]),
          "metricsFormat[0]", ("not a valid regular expression",)),
    Break("filter_one_capture_group", "file-metrics-collector.yaml",
          set_("spec.metricsCollectorSpec.source.filter.metricsFormat", ["val_accuracy=([0-9.]+)"]),
          "metricsFormat[0]", ("1 capture group",)),
    Break("prometheus_port_zero", "random.yaml",
          both(set_("spec.metricsCollectorSpec", copy.deepcopy(PROMETHEUS)),
               set_("spec.metricsCollectorSpec.source.httpGet.port", 0)), "httpGet.port"),
    Break("prometheus_path_relative", "random.yaml",
          both(set_("spec.metricsCollectorSpec", copy.deepcopy(PROMETHEUS)),
               set_("spec.metricsCollectorSpec.source.httpGet.path", "metrics")), "httpGet.path", ("'metrics'",)),
]


@pytest.mark.parametrize("case", BREAKS, ids=break_ids(BREAKS))
def test_one_break_gives_only_problems_about_it(case: Break) -> None:
    assert_only_problems_about(case)


def test_katib_default_stdout_filter_is_accepted() -> None:
    # Katib's own default filter has four groups (name, value and two inside the value).
    experiment = fixture("random.yaml")
    experiment["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "StdOut"},
        "source": {"filter": {"metricsFormat": [KATIB_DEFAULT_METRICS_FILTER]}},
    }
    assert validate_experiment(experiment) == []
