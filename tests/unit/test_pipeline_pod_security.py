"""Every step of the compiled pipeline asks for a non-root user, as Pod Security "restricted" requires.

kfp-kubernetes 2.17.3 (kfp/kubernetes/security_context.py, set_security_context) writes runAsUser,
runAsGroup and runAsNonRoot into each executor's platform config, drops every capability, and says
that the KFP backend itself sets allowPrivilegeEscalation=false and seccompProfile RuntimeDefault;
those backend defaults are taken from that docstring, not checked against the backend here.
"""

from __future__ import annotations

import yaml

from components.core.settings import IMAGE_UID
from tests.conftest import REPO

COMPILED = REPO / "pipelines" / "compiled" / "study_pipeline.yaml"


def documents() -> tuple[dict, dict]:
    pipeline_spec, platform_spec = list(yaml.safe_load_all(COMPILED.read_text()))
    return pipeline_spec, platform_spec


def test_every_executor_of_the_compiled_pipeline_runs_as_the_images_non_root_user():
    pipeline_spec, platform_spec = documents()
    executors = set(pipeline_spec["deploymentSpec"]["executors"])
    configs = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors and executors <= set(configs), f"executors without pod settings: {executors - set(configs)}"
    for name in executors:
        context = configs[name].get("securityContext") or {}
        assert context.get("runAsNonRoot") is True, name
        assert int(context.get("runAsUser", 0)) == IMAGE_UID and int(context.get("runAsGroup", 0)) == IMAGE_UID, name
