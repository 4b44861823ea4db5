"""GPU sharing for the study's small trials on a cluster: the device plugin's configuration this
project ships (k8s/gpu-sharing/device-plugin-config.yaml) and what the GPU trials need beside it.

The configuration's rules are NVIDIA's k8s-device-plugin's, as its config parser applies them
(api/config/v1 at commit 9b89da8b7d9e700942c8630f3a99b19f55928e4e, replicas.go; config.go and
sharing.go at 03973a9735632096f5dca01a2bd8e4bfec30a891):

* ``version`` is ``v1`` (config.go, parseConfigFrom: any other version is refused);
* ``sharing`` holds ``timeSlicing`` or ``mps``; with both, MPS wins (sharing.go, SharingStrategy),
  so a configuration names one;
* a strategy's ``resources`` is a non-empty list (replicas.go: "no resources specified"), its keys
  ``renameByDefault``, ``failRequestsGreaterThanOne``, ``resources``;
* each resource has ``name`` and ``replicas`` (required), ``replicas`` >= 2 ("number of replicas
  must be >= 2"), optional ``devices`` (default "all") and ``rename``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fixtures.kustomize import schema_problem

REPO = Path(__file__).resolve().parents[2]
CONFIG_MAP = REPO / "k8s" / "gpu-sharing" / "device-plugin-config.yaml"
GPU_EXPERIMENTS = sorted((REPO / "katib" / "experiments" / "gpu").glob("*.yaml"))
STRATEGY_KEYS = {"renameByDefault", "failRequestsGreaterThanOne", "resources"}
RESOURCE_KEYS = {"name", "rename", "devices", "replicas"}


def device_plugin_problems(text: str) -> list[str]:
    """What NVIDIA's device plugin would refuse in one configuration (see the module docstring)."""
    config = yaml.safe_load(text)
    problems = []
    if config.get("version", "v1") != "v1":
        problems.append(f"unknown version: {config.get('version')}")
    strategies = [k for k in ("timeSlicing", "mps") if k in (config.get("sharing") or {})]
    if len(strategies) != 1:
        problems.append(f"sharing names {strategies or 'no strategy'}; expected one of timeSlicing, mps")
    for strategy in strategies:
        spec = config["sharing"][strategy] or {}
        problems += [f"{strategy}: unknown field {k}" for k in sorted(set(spec) - STRATEGY_KEYS)]
        if not spec.get("resources"):
            problems.append(f"{strategy}: no resources specified")
        for resource in spec.get("resources") or []:
            problems += [f"{strategy}: unknown field {k}" for k in sorted(set(resource) - RESOURCE_KEYS)]
            if "name" not in resource:
                problems.append(f"{strategy}: no resource name specified")
            if not isinstance(resource.get("replicas"), int) or resource["replicas"] < 2:
                problems.append(f"{strategy}: number of replicas must be >= 2")
    return problems


def replicas_of(text: str) -> int:
    (strategy,) = yaml.safe_load(text)["sharing"].values()
    return strategy["resources"][0]["replicas"]


def shipped() -> dict:
    return yaml.safe_load(CONFIG_MAP.read_text())


def test_the_rules_catch_what_the_device_plugin_refuses():
    good = "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n"
    assert device_plugin_problems(good) == []
    assert device_plugin_problems(good.replace("replicas: 4", "replicas: 1")) == [
        "mps: number of replicas must be >= 2"]
    assert device_plugin_problems(good.replace("v1", "v2")) == ["unknown version: v2"]
    assert device_plugin_problems(good.replace("mps:", "timeslicing:")) == [
        "sharing names no strategy; expected one of timeSlicing, mps"]
    assert device_plugin_problems(good.replace("replicas: 4", "replicas: 4\n      replica: 2")) == [
        "mps: unknown field replica"]


def test_the_shipped_configmap_is_valid_kubernetes_and_each_configuration_the_device_plugins():
    config_map = shipped()
    assert schema_problem(config_map) is None
    assert set(config_map["data"]) == {"mps", "time-slicing"}
    for key, text in config_map["data"].items():
        assert device_plugin_problems(text) == [], key
        strategy = {"mps": "mps", "time-slicing": "timeSlicing"}[key]
        resources = yaml.safe_load(text)["sharing"][strategy]["resources"]
        assert [r["name"] for r in resources] == ["nvidia.com/gpu"]  # what the GPU trials ask for


@pytest.mark.parametrize("path", GPU_EXPERIMENTS, ids=lambda p: p.name)
def test_gpu_trials_fit_the_shared_gpus_and_grow_their_memory(path):
    """At most as many trials at once as one GPU's replicas (a pool of one GPU: the tightest case), each
    asking for one replica, and TensorFlow told to grow its memory instead of mapping the whole GPU."""
    replicas = min(replicas_of(text) for text in shipped()["data"].values())
    experiment = yaml.safe_load(path.read_text())
    assert experiment["spec"]["parallelTrialCount"] <= replicas
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "TF_FORCE_GPU_ALLOW_GROWTH", "value": "true"} in container.get("env", [])
