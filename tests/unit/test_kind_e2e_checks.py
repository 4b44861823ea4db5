"""The kind end-to-end's own parts, checked without a cluster: the shrunken Experiment it launches,
its result checks, the kind cluster config, that kind_e2e.sh skips cleanly where kind is missing,
and the pipeline it compiles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from katib.validate import validate_experiment
from tests.e2e.kind_e2e import (
    PIPELINE_ARTIFACT_TASKS,
    SETTINGS_CONFIGMAP,
    check_artifact_listing,
    check_launch_outputs,
    check_pipeline_run,
    primary_container,
    shrink_experiment,
)
from tests.fixtures.kustomize import K8S, KIND_IMAGE, REPO, option_value, schema_problem

EXPERIMENT_FILES = sorted((REPO / "katib" / "experiments").glob("*.yaml"))
E2E_SCRIPT = REPO / "tests" / "e2e" / "kind_e2e.sh"


@pytest.mark.parametrize("path", [p for p in EXPERIMENT_FILES if p.parent.name != "gpu"], ids=lambda p: p.name)
def test_shrunken_e2e_experiment_stays_valid(path):
    experiment = yaml.safe_load(path.read_text())
    small = shrink_experiment(experiment, image=KIND_IMAGE)
    assert validate_experiment(small) == []
    spec = small["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"]) == (2, 1, 1)
    container = primary_container(small)
    assert option_value(container["command"], "--epochs") == "1"
    assert container["image"] == KIND_IMAGE
    assert {"configMapRef": {"name": SETTINGS_CONFIGMAP}} in container["envFrom"]
    assert schema_problem({**spec["trialTemplate"]["trialSpec"], "metadata": {"name": "trial"}}) is None
    assert small["metadata"]["name"] != experiment["metadata"]["name"]
    assert primary_container(experiment)["image"] != KIND_IMAGE, "the original is left alone"


def test_e2e_checks_accept_a_good_result_and_name_each_problem():
    experiment = shrink_experiment(yaml.safe_load((REPO / "katib/experiments/optimizer.yaml").read_text()),
                                   image=KIND_IMAGE)
    good = {"condition": "Succeeded", "reason": "ExperimentMaxTrialsReached", "trials": {"succeeded": 2},
            "objective": "val_accuracy", "objective_value": 0.81, "assignments": {"optimizer": "Nadam"},
            "optimal_trial": {"bestTrialName": "fmstudy-optimizer-e2e-abc"}}
    assert check_launch_outputs(good, experiment) == []
    bad = {**good, "condition": "Failed", "trials": {"succeeded": 1}, "objective_value": None,
           "assignments": {"optimizer": "Lion"}}
    assert len(check_launch_outputs(bad, experiment)) == 4

    run = {"run_id": "r1", "state": "SUCCEEDED", "run_details": {"task_details": [{"state": "SUCCEEDED"}]}}
    assert check_pipeline_run(run) == []
    failed = {"run_id": "r1", "state": "FAILED", "error": {"message": "boom"},
              "run_details": {"task_details": [{"display_name": "train", "state": "FAILED", "pod_name": "p"}]}}
    assert len(check_pipeline_run(failed)) == 2

    listing = "\n".join(f"/data/mlpipeline/v2/artifacts/fashion-mnist-study/r1/{task}/7/out"
                        for task in ("prepare-data", "train-cnn", "evaluate-model", "build-report"))
    assert check_artifact_listing(listing, "r1") == []
    assert check_artifact_listing(listing, "r2") == ["no artifact of run r2 in the object store"]
    assert check_artifact_listing(listing.replace("build-report", "x"), "r1") == [
        "no artifact of task 'build-report' in run r1's folder"]


def test_kind_cluster_config_shape():
    config = yaml.safe_load((K8S / "kind" / "cluster.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["kind"] == "Cluster"
    assert [node["role"] for node in config["nodes"]] == ["control-plane", "worker"]
    assert set(config) <= {"kind", "apiVersion", "name", "nodes", "networking", "featureGates",
                           "runtimeConfig", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
                           "containerdConfigPatches", "containerdConfigPatchesJSON6902"}
    for node in config["nodes"]:
        assert set(node) <= {"role", "image", "labels", "extraMounts", "extraPortMappings",
                             "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902"}
        assert all(isinstance(v, str) for v in node.get("labels", {}).values())


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("missing, reason", [
    ("kind", "kind not found on PATH"),
    ("docker-engine", "no running Docker engine"),
    ("internet", "no internet access"),
])
def test_e2e_script_skips_without_its_tools(tmp_path, missing, reason):
    # A PATH of stubs only: every tool "works" except the one missing, so nothing real can start.
    # The stubs exit before doing anything; a stub `kind` must never be reached past the checks.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "kubectl", "git", "curl", "kind"):
        _stub(bin_dir, tool, "exit 0")
    if missing == "kind":
        (bin_dir / "kind").unlink()
    elif missing == "docker-engine":
        _stub(bin_dir, "docker", 'if [ "$1" = info ]; then exit 1; fi; exit 0')
    else:
        _stub(bin_dir, "curl", "exit 28")  # curl's timeout status
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run([bash, str(E2E_SCRIPT)], env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 1 and lines[0].startswith("skipped: "), result.stdout
    assert reason in lines[0]
    assert "passed" not in result.stdout + result.stderr


def test_pipeline_compiled_for_kind_names_the_loaded_image_and_the_checked_tasks(tmp_path):
    # What kind_e2e.sh compiles: the smoke profile, images named by STUDY_IMAGE_REGISTRY/TAG.
    out = tmp_path / "study_pipeline.yaml"
    env = {**os.environ, "STUDY_IMAGE_REGISTRY": "fmstudy", "STUDY_IMAGE_TAG": "dev"}
    code = ("from pipelines.cluster import ClusterOptions; from pipelines.compile import compile_pipeline; "
            f"compile_pipeline({str(out)!r}, profile='smoke', cluster=ClusterOptions(use_gpus=False))")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300)
    ir = next(yaml.safe_load_all(out.read_text()))  # the pipeline spec (the platform spec follows it)
    assert set(PIPELINE_ARTIFACT_TASKS) <= set(ir["root"]["dag"]["tasks"])
    images = {executor["container"]["image"] for executor in ir["deploymentSpec"]["executors"].values()}
    assert KIND_IMAGE in images
    assert not any(image.startswith("ghcr.io/") for image in images), images
