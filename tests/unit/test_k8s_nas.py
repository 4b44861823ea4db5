"""The AutoKeras search's manifests (k8s/components/nas), as the opt-in overlays render them:
the KerasTuner chief and workers read the study's settings and the dataset the data step writes,
can write their shared search volume as the image's user, are sized for kind, and put the
workers on the GPU pool on GKE. Then the component's own files, read without kubectl: a chief
Service and Job and an indexed worker Job whose arguments `study nas` parses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from components.core.settings import IMAGE_UID, K8S_NAMESPACE, K8S_TRIAL_SERVICE_ACCOUNT, TRAINER_IMAGE
from components.nas.cli import add_arguments, config_from_args
from components.nas.config import BLOCK_TYPES, TUNERS
from components.nas.roles import search_role
from components.profile_check import load_profile
from katib.experiments import cluster_experiments
from tests.conftest import REPO
from tests.e2e.kind_e2e import SETTINGS_CONFIGMAP, primary_container
from tests.fixtures.kustomize import (
    NAS_JOBS,
    NAS_ROOTS,
    default_settings,
    needs_kubectl,
    objects,
    one,
    option_value,
    pod_specs,
)

GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
GPU_ACCELERATOR = "nvidia-tesla-t4"
GPU_RESOURCE = "nvidia.com/gpu"
KEY_SECRET = "fmstudy-gcs-key"
K8S_NAS = REPO / "k8s" / "components" / "nas"


@needs_kubectl
@pytest.mark.parametrize("root", NAS_ROOTS)
def test_jobs_read_the_settings_and_mount_the_key_optionally(root):
    jobs = {name: spec for name, spec in pod_specs(root).items() if name.startswith("Job/")}
    assert NAS_JOBS <= set(jobs), "the KerasTuner Jobs (components/nas) are included"
    for where, spec in jobs.items():
        container = spec["containers"][0]
        assert {"configMapRef": {"name": SETTINGS_CONFIGMAP}} in container["envFrom"], where
        if where.startswith("Job/nas-"):
            assert any(ref.get("configMapRef", {}).get("name", "").startswith("nas-settings")
                       for ref in container["envFrom"]), f"{where} keeps its own nas-settings"
            [volume] = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == KEY_SECRET]
            assert volume["secret"]["optional"] is True, where
            [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
            assert mount["readOnly"] is True
            settings = one(root, "ConfigMap", SETTINGS_CONFIGMAP)["data"]
            assert settings["STUDY_GCS_KEY_FILE"].startswith(mount["mountPath"] + "/")


@needs_kubectl
def test_kind_search_has_smaller_requests():
    def cpu(quantity: str) -> float:
        return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)

    cloud, kind = pod_specs("overlays/gpu-cloud-nas"), pod_specs("overlays/kind-nas")
    for where in NAS_JOBS:
        cloud_requests = cloud[where]["containers"][0]["resources"]["requests"]
        kind_requests = kind[where]["containers"][0]["resources"]["requests"]
        assert cpu(kind_requests["cpu"]) < cpu(cloud_requests["cpu"]), where
    for where, spec in kind.items():
        assert cpu(spec["containers"][0]["resources"]["requests"]["cpu"]) <= 1, \
            f"{where}: a kind node has a few cores for everything"
    [claim] = objects("overlays/kind-nas", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"], "kind's local-path provisioner has no RWX"


@needs_kubectl
@pytest.mark.parametrize("root", NAS_ROOTS)
def test_search_reads_the_dataset_the_data_step_writes(root):
    # The data step's artifact: what the Experiments' trials read and the kind seed Job writes.
    data_uris = {option_value(primary_container(e)["command"], "--data")
                 for e in cluster_experiments(load_profile("study")).values()}
    [data_uri] = data_uris
    seed = pod_specs("overlays/kind")["Job/fmstudy-seed-data"]["containers"][0]
    assert option_value(seed["command"] + seed["args"], "--out") == data_uri
    [settings] = [c for c in objects(root, "ConfigMap") if c["metadata"]["name"].startswith("nas-settings")]
    assert settings["data"]["DATA_URI"] == data_uri


@needs_kubectl
@pytest.mark.parametrize("root", NAS_ROOTS)
def test_search_volume_is_writable_by_the_image_user(root):
    # A new volume's root is owned by root; fsGroup makes the kubelet hand it to the pod's group.
    for where in NAS_JOBS:
        spec = pod_specs(root)[where]
        assert spec["securityContext"]["fsGroup"] == IMAGE_UID, where
        assert spec["securityContext"]["runAsUser"] == IMAGE_UID, where
        assert any(v.get("persistentVolumeClaim") for v in spec["volumes"]), where


@needs_kubectl
def test_gpu_overlay_puts_the_kerastuner_workers_on_the_gpu_pool():
    defaults = default_settings()
    specs = pod_specs("overlays/gpu-cloud-nas")
    workers = specs["Job/nas-workers"]
    assert workers["nodeSelector"] == {GPU_NODE_LABEL: GPU_ACCELERATOR}
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in workers["tolerations"]
    container = workers["containers"][0]
    assert container["image"] == defaults["trainer_gpu"]
    assert container["resources"]["limits"][GPU_RESOURCE] == "1"
    # The chief only runs the oracle: it stays on CPU nodes with the CPU image.
    chief = specs["Job/nas-chief"]
    assert not chief.get("nodeSelector") and not chief.get("tolerations")
    assert chief["containers"][0]["image"] == defaults["trainer"]
    [claim] = objects("overlays/gpu-cloud-nas", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"]


# ------------------------------------------------------- the component's own files

def _manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S_NAS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return docs


def test_manifests_are_a_chief_service_and_job_and_an_indexed_worker_job():
    docs = _manifests()
    kustomization = docs["Component/kustomization"]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S_NAS.glob("*.yaml")
                                                       if p.name != "kustomization.yaml")
    assert kustomization["namespace"] == K8S_NAMESPACE
    image = kustomization["images"][0]
    assert f"{image['newName']}:{image['newTag']}" == TRAINER_IMAGE

    chief, workers, service = docs["Job/nas-chief"], docs["Job/nas-workers"], docs["Service/nas-chief"]
    assert workers["spec"]["completionMode"] == "Indexed"
    assert workers["spec"]["completions"] == workers["spec"]["parallelism"] >= 2
    chief_pod, worker_pod = chief["spec"]["template"], workers["spec"]["template"]
    assert service["spec"]["selector"].items() <= chief_pod["metadata"]["labels"].items()
    assert not service["spec"]["selector"].items() <= worker_pod["metadata"]["labels"].items()

    def env(pod):
        return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}

    chief_env, worker_env = env(chief_pod), env(worker_pod)
    assert chief_env["KERASTUNER_TUNER_ID"] == "chief"
    assert search_role({k: v for k, v in chief_env.items() if v}).kind == "chief"
    assert worker_env["KERASTUNER_TUNER_ID"] == "tuner$(WORKER_INDEX)"
    names = [e["name"] for e in worker_pod["spec"]["containers"][0]["env"]]
    assert names.index("WORKER_INDEX") < names.index("KERASTUNER_TUNER_ID"), "$(VAR) expands only earlier vars"
    assert worker_env["KERASTUNER_ORACLE_IP"] == service["metadata"]["name"]
    port = service["spec"]["ports"][0]
    assert chief_env["KERASTUNER_ORACLE_PORT"] == worker_env["KERASTUNER_ORACLE_PORT"] == str(port["port"])
    assert port["targetPort"] in [p["name"] for p in chief_pod["spec"]["containers"][0]["ports"]]

    for pod in (chief_pod, worker_pod):
        spec, container = pod["spec"], pod["spec"]["containers"][0]
        assert spec["serviceAccountName"] == K8S_TRIAL_SERVICE_ACCOUNT
        assert container["command"] == ["study", "nas"]
        assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim/nas-search"][
            "metadata"]["name"]
        assert container["volumeMounts"][0]["mountPath"] == "/search"
    # Chief and workers run one search: identical arguments, the search folder on the shared volume.
    assert chief_pod["spec"]["containers"][0]["args"] == worker_pod["spec"]["containers"][0]["args"]
    assert "--search-dir=/search/$(RUN_ID)" in chief_pod["spec"]["containers"][0]["args"]
    assert docs["PersistentVolumeClaim/nas-search"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_manifest_arguments_parse_with_the_settings_they_are_given():
    docs = _manifests()
    literals = docs["Component/kustomization"]["configMapGenerator"][0]["literals"]
    settings = dict(item.split("=", 1) for item in literals)
    args = [a.replace("$(", "{").replace(")", "}").format(**settings)
            for a in docs["Job/nas-chief"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(args))
    assert (config.block_type, config.normalize, config.augment, config.pretrained) == ("resnet", True, False, False)
    assert config.block_type in BLOCK_TYPES and config.tuner in TUNERS


def test_manifests_are_valid_kubernetes_objects():
    from kubernetes.client import ApiClient

    client = ApiClient()
    for key, doc in _manifests().items():
        kind = key.split("/")[0]
        if kind in ("Kustomization", "Component"):
            continue
        model = client._ApiClient__deserialize(doc, f"V1{kind}")
        assert model.metadata.name == doc["metadata"]["name"]
    assert Path(K8S_NAS / "kustomization.yaml").exists()
