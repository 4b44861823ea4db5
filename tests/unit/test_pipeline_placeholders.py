"""Every ``{{$...}}`` placeholder in the compiled pipeline is one the open-source KFP backend resolves.

The facts, from kubeflow/pipelines (read, not copied):

- ``backend/src/v2/driver/resolve.go`` (``resolveInputParameter``, the ``RuntimeValue`` constant case;
  commit 039ecf96, KFP 2.x, 2025): a task input whose constant is *exactly* one of the seven strings in
  DRIVER_WHOLE_VALUE is replaced by the run's or task's value; ``{{$.workspace_path}}`` is replaced
  anywhere in a constant. Every other constant reaches the step as literal text. So
  ``{{$.pipeline_root}}`` is never resolved, and neither is a placeholder inside a longer string.
- ``backend/src/v2/component/launcher_v2.go`` (``getPlaceholders``; commit 0045064): in a container's
  command and args the launcher replaces ``{{$}}`` (the executor input) and the inputs' and outputs'
  parameter and artifact placeholders, LAUNCHER_PATTERNS.
"""

import re

import pytest
import yaml

from pipelines.cluster import ClusterOptions, kind_options
from pipelines.compile import compile_pipeline

DRIVER_WHOLE_VALUE = frozenset({
    "{{$.pipeline_job_name}}", "{{$.pipeline_job_resource_name}}", "{{$.pipeline_job_uuid}}",
    "{{$.pipeline_task_name}}", "{{$.pipeline_task_uuid}}",
    "{{$.pipeline_job_create_time_utc}}", "{{$.pipeline_job_schedule_time_utc}}",
})
DRIVER_ANYWHERE = frozenset({"{{$.workspace_path}}"})
LAUNCHER_PATTERNS = [re.compile(p) for p in (
    r"\{\{\$\}\}",
    r"\{\{\$\.inputs\.parameters\['[^']+'\]\}\}",
    r"\{\{\$\.inputs\.artifacts\['[^']+'\]\.(uri|path)\}\}",
    r"\{\{\$\.outputs\.artifacts\['[^']+'\]\.(uri|path)\}\}",
    r"\{\{\$\.outputs\.parameters\['[^']+'\]\.output_file\}\}",
)]
PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


def walk(node, path=""):
    """(path, string) for every string in a YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def unresolved(documents: list) -> list[str]:
    """Each placeholder the backend would pass on as literal text, with where it is."""
    problems = []
    for document in documents:
        for path, text in walk(document):
            found = PLACEHOLDER.findall(text)
            if not found:
                continue
            in_container = re.search(r"\.container\.(command|args)\[\d+\]$", path)
            in_constant = path.endswith(".runtimeValue.constant")
            for placeholder in found:
                if in_container and any(p.fullmatch(placeholder) for p in LAUNCHER_PATTERNS):
                    continue
                if in_constant and (text == placeholder and placeholder in DRIVER_WHOLE_VALUE
                                    or placeholder in DRIVER_ANYWHERE):
                    continue
                problems.append(f"{path}: {placeholder} in {text[:80]!r}")
    return problems


def compiled_documents(tmp_path, options: ClusterOptions) -> list:
    out = tmp_path / "pipeline.yaml"
    compile_pipeline(str(out), cluster=options)
    return list(yaml.safe_load_all(out.read_text()))


@pytest.mark.parametrize("options", [ClusterOptions(), ClusterOptions(gcs_key_secret="key"), kind_options()],
                         ids=["gke", "key-secret", "kind"])
def test_compiled_pipeline_uses_only_placeholders_the_kfp_backend_resolves(tmp_path, options):
    assert unresolved(compiled_documents(tmp_path, options)) == []


def test_the_check_catches_what_the_driver_leaves_alone():
    # The old AutoKeras input, and a run id glued into a longer string: both reach the step as text.
    task = {"inputs": {"parameters": {
        "search_root": {"runtimeValue": {"constant": "{{$.pipeline_root}}"}},
        "name": {"runtimeValue": {"constant": "fmstudy-{{$.pipeline_job_uuid}}"}},
        "run_id": {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}},
    }}}
    problems = unresolved([task])
    assert len(problems) == 2
    assert "{{$.pipeline_root}}" in problems[0] or "{{$.pipeline_root}}" in problems[1]
