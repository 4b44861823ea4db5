"""The cluster manifests, checked without a cluster.

Each kustomize root is rendered with `kubectl kustomize` (kustomize v5, built into kubectl) and
every object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an
unknown or misspelled field fails); then what the study relies on is asserted: the namespace label
Katib needs, RBAC confined to the namespace, the overlays' images, node selection and settings.
The Katib Experiments' trial Jobs get the same schema check plus Katib's own rules. kind_e2e.sh is
run here only to check that it skips cleanly where kind is missing.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import kubernetes_validate
import pytest
import yaml

from components.profiles import load_profile
from components.settings import K8S_NAMESPACE, K8S_SERVICE_ACCOUNT
from katib import launcher
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

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
ROOTS = ("base", "overlays/kind", "overlays/gpu-cloud")
EXPERIMENT_FILES = sorted((REPO / "katib" / "experiments").glob("*.yaml")) + sorted(
    (REPO / "katib" / "experiments" / "gpu").glob("*.yaml"))
E2E_SCRIPT = REPO / "tests" / "e2e" / "kind_e2e.sh"

# The Kubernetes minor the manifests are written for: kind's node image in kind_e2e.sh, and the
# kubectl this project's machines carry. kubernetes-validate ships its schemas.
K8S_VERSION = "1.32"
KIND_IMAGE = "fmstudy/trainer:dev"
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
GPU_ACCELERATOR = "nvidia-tesla-t4"
GPU_RESOURCE = "nvidia.com/gpu"
KEY_SECRET = "fmstudy-gcs-key"
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"
KATIB_INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                        "PersistentVolume", "StorageClass", "PriorityClass"}
EMULATOR = "Deployment/gcs-emulator"  # the kind overlay's in-cluster GCS
POD_TEMPLATE_KINDS = {"Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (it renders the kustomize roots)")


# ---------------------------------------------------------------- helpers


def kustomize(path: Path) -> list[dict]:
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def rendered(root: str) -> tuple[dict, ...]:
    return tuple(kustomize(K8S / root))


def objects(root: str, kind: str) -> list[dict]:
    return [doc for doc in rendered(root) if doc["kind"] == kind]


def one(root: str, kind: str, name: str) -> dict:
    found = [doc for doc in objects(root, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{root}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(root: str) -> dict[str, dict]:
    """{'Kind/name': its pod spec} for every object with a pod template."""
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
            for doc in rendered(root) if doc["kind"] in POD_TEMPLATE_KINDS}


def schema_problem(obj: dict) -> str | None:
    """None if the object is valid for K8S_VERSION in strict mode, else one line saying where and why."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(p) for p in err.path) or "(top)"
        return f"{where}: {err.message}"
    return None


def default_settings() -> dict:
    """components.settings as it is without STUDY_* overrides in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDY_")}
    code = ("import json, components.settings as s; print(json.dumps({'registry': s.IMAGE_REGISTRY, "
            "'tag': s.IMAGE_TAG, 'root': s.ARTIFACT_ROOT, 'namespace': s.K8S_NAMESPACE, "
            "'trainer': s.TRAINER_IMAGE, 'trainer_gpu': s.TRAINER_GPU_IMAGE}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def locked_version(package: str) -> str:
    versions = {p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"] if p["name"] == package}
    assert len(versions) == 1, f"{package}: uv.lock holds {sorted(versions) or 'no version'}"
    return versions.pop()


def option_value(command: list[str], flag: str) -> str:
    """The value after `flag` in an argv list, or of `flag=value`."""
    for i, arg in enumerate(command):
        if arg == flag:
            return command[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command}")


# ---------------------------------------------------------------- every root: schema, namespace, RBAC


def test_strict_schema_check_catches_a_misspelled_field():
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}], "restartPolicy": "Never"}}}}
    assert schema_problem(job) is None
    job["spec"]["template"]["spec"]["nodeSelectr"] = {GPU_NODE_LABEL: GPU_ACCELERATOR}
    assert "'nodeSelectr' was unexpected" in schema_problem(job)


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_every_object_is_valid_kubernetes(root):
    problems = [f"{doc['kind']}/{doc['metadata']['name']}: {problem}"
                for doc in rendered(root) if (problem := schema_problem(doc))]
    assert problems == []


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_everything_lives_in_the_study_namespace(root):
    namespace = one(root, "Namespace", K8S_NAMESPACE)
    assert namespace["metadata"]["labels"][KATIB_INJECTION_LABEL] == "enabled"
    for doc in rendered(root):
        if doc["kind"] not in CLUSTER_SCOPED_KINDS:
            assert doc["metadata"].get("namespace") == K8S_NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_rbac_is_namespaced_minimal_and_without_wildcards(root):
    kinds = {doc["kind"] for doc in rendered(root)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    role = one(root, "Role", K8S_SERVICE_ACCOUNT)
    rules = role["rules"]
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert not rule.get("resourceNames") or "*" not in rule["resourceNames"]

    def verbs(group: str, resource: str) -> set[str]:
        return {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}

    # What katib/launcher.py calls: create, get, delete, and a watch (list + watch) on its Experiment.
    assert verbs(launcher.GROUP, launcher.PLURAL) == {"create", "get", "list", "watch", "delete"}
    assert verbs(launcher.GROUP, "trials") == {"get", "list", "watch"}
    assert verbs(launcher.GROUP, "suggestions") == {"get", "list"}
    assert verbs("", "pods") == verbs("", "pods/log") == {"get", "list", "watch"}
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {(launcher.GROUP, "experiments"), (launcher.GROUP, "trials"),
                       (launcher.GROUP, "suggestions"), ("", "pods"), ("", "pods/log")}
    for rule in rules:
        if set(rule["verbs"]) & {"create", "update", "patch", "delete", "deletecollection"}:
            assert rule["resources"] == [launcher.PLURAL], f"only Experiments may be written: {rule}"

    binding = one(root, "RoleBinding", K8S_SERVICE_ACCOUNT)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": K8S_SERVICE_ACCOUNT}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": K8S_SERVICE_ACCOUNT,
                                    "namespace": K8S_NAMESPACE}]


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_pods_run_as_the_study_account_and_no_secret_is_rendered(root):
    assert objects(root, "Secret") == [], "the GCS key Secret is created by hand, never committed"
    specs = pod_specs(root)
    assert specs, f"{root} has no pods"
    for where, spec in specs.items():
        assert spec.get("serviceAccountName") == K8S_SERVICE_ACCOUNT, where


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_jobs_read_the_settings_and_mount_the_key_optionally(root):
    jobs = {name: spec for name, spec in pod_specs(root).items() if name.startswith("Job/")}
    assert {"Job/nas-chief", "Job/nas-workers"} <= set(jobs), "the KerasTuner Jobs (base/nas) are included"
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


# ---------------------------------------------------------------- base


@needs_kubectl
def test_settings_configmap_holds_components_settings_defaults():
    defaults = default_settings()
    data = one("base", "ConfigMap", SETTINGS_CONFIGMAP)["data"]
    assert data["STUDY_ARTIFACT_ROOT"] == defaults["root"] == "gs://fmstudy-artifacts/study"
    assert data["STUDY_NAMESPACE"] == defaults["namespace"] == K8S_NAMESPACE
    assert f"{data['STUDY_IMAGE_REGISTRY']}/trainer:{data['STUDY_IMAGE_TAG']}" == defaults["trainer"]
    # Pointing Google's libraries at an absent key would break workload identity: only the component sets it.
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in data


@needs_kubectl
def test_base_service_account_has_the_workload_identity_placeholder():
    account = one("base", "ServiceAccount", K8S_SERVICE_ACCOUNT)
    assert account["metadata"]["annotations"][WORKLOAD_IDENTITY].endswith(".iam.gserviceaccount.com")
    assert one("overlays/gpu-cloud", "ServiceAccount", K8S_SERVICE_ACCOUNT)["metadata"]["annotations"] == \
        account["metadata"]["annotations"]


@needs_kubectl
def test_gcs_key_component_points_credentials_at_the_mounted_key(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "base", tmp_path)],
        "components": [os.path.relpath(K8S / "components" / "gcs-key", tmp_path)],
    }))
    docs = kustomize(tmp_path)
    [settings] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == SETTINGS_CONFIGMAP]
    assert settings["data"]["GOOGLE_APPLICATION_CREDENTIALS"] == settings["data"]["STUDY_GCS_KEY_FILE"]
    assert settings["data"]["STUDY_ARTIFACT_ROOT"]  # merged, not replaced
    assert all(schema_problem(d) is None for d in docs)


# ---------------------------------------------------------------- kind overlay


@needs_kubectl
def test_kind_overlay_runs_the_loaded_image_on_cpu():
    for where, spec in pod_specs("overlays/kind").items():
        for container in spec["containers"]:
            if where != EMULATOR:
                assert container["image"] == KIND_IMAGE, where
            assert GPU_RESOURCE not in container.get("resources", {}).get("limits", {}), where
        assert not spec.get("nodeSelector") and not spec.get("tolerations"), where
    data = one("overlays/kind", "ConfigMap", SETTINGS_CONFIGMAP)["data"]
    assert f"{data['STUDY_IMAGE_REGISTRY']}/trainer:{data['STUDY_IMAGE_TAG']}" == KIND_IMAGE
    overlay = yaml.safe_load((K8S / "overlays" / "kind" / "kustomization.yaml").read_text())
    assert {"name": "ghcr.io/fmstudy/trainer", "newName": "fmstudy/trainer", "newTag": "dev"} in overlay["images"]


@needs_kubectl
def test_kind_overlay_has_no_workload_identity_and_smaller_requests():
    account = one("overlays/kind", "ServiceAccount", K8S_SERVICE_ACCOUNT)
    assert WORKLOAD_IDENTITY not in (account["metadata"].get("annotations") or {})

    def cpu(quantity: str) -> float:
        return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)

    base, kind = pod_specs("base"), pod_specs("overlays/kind")
    for where in base:
        base_requests = base[where]["containers"][0]["resources"]["requests"]
        kind_requests = kind[where]["containers"][0]["resources"]["requests"]
        assert cpu(kind_requests["cpu"]) < cpu(base_requests["cpu"]), where
        assert cpu(kind_requests["cpu"]) <= 1, f"{where}: a kind node has a few cores for everything"
    [claim] = objects("overlays/kind", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"], "kind's local-path provisioner has no RWX"


@needs_kubectl
def test_kind_overlay_emulates_the_artifact_bucket_and_seeds_what_the_experiments_read():
    defaults = default_settings()
    bucket = defaults["root"].removeprefix("gs://").split("/")[0]
    data = one("overlays/kind", "ConfigMap", SETTINGS_CONFIGMAP)["data"]
    service = one("overlays/kind", "Service", "gcs-emulator")
    port = service["spec"]["ports"][0]["port"]
    assert data["STORAGE_EMULATOR_HOST"] == f"http://gcs-emulator.{K8S_NAMESPACE}.svc:{port}"
    emulator = " ".join(pod_specs("overlays/kind")[EMULATOR]["containers"][0]["command"]).split()
    assert f"--default-bucket={bucket}" in emulator
    assert f"--port={port}" in emulator
    assert f"gcp-storage-emulator=={locked_version('gcp-storage-emulator')}" in emulator, "the tests' version"

    seed = pod_specs("overlays/kind")["Job/fmstudy-seed-data"]["containers"][0]
    argv = seed["command"] + seed["args"]
    smoke = load_profile("smoke")["data"]
    assert int(option_value(argv, "--train-size")) == smoke["train_size"]
    assert int(option_value(argv, "--test-size")) == smoke["test_size"]
    assert float(option_value(argv, "--val-fraction")) == smoke["val_fraction"]
    assert int(option_value(argv, "--seed")) == smoke["seed"]
    for path in EXPERIMENT_FILES:
        trial = primary_container(yaml.safe_load(path.read_text()))
        assert option_value(trial["command"], "--data") == option_value(argv, "--out"), path.name
    assert option_value(argv, "--out").startswith(defaults["root"] + "/")


# ---------------------------------------------------------------- gpu-cloud overlay


@needs_kubectl
def test_gpu_overlay_puts_the_kerastuner_workers_on_the_gpu_pool():
    defaults = default_settings()
    specs = pod_specs("overlays/gpu-cloud")
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
    [claim] = objects("overlays/gpu-cloud", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["spec"]["storageClassName"]


# ---------------------------------------------------------------- Katib Experiments


def test_there_are_cpu_and_gpu_experiments():
    names = {p.relative_to(REPO / "katib" / "experiments").as_posix() for p in EXPERIMENT_FILES}
    assert {"optimizer.yaml", "gpu/optimizer.yaml"} <= names


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.relative_to(REPO / "katib").as_posix())
def test_experiment_passes_katib_rules_and_its_trial_job_is_valid_kubernetes(path):
    experiment = yaml.safe_load(path.read_text())
    assert validate_experiment(experiment) == []
    assert experiment["metadata"]["namespace"] == K8S_NAMESPACE
    trial_job = experiment["spec"]["trialTemplate"]["trialSpec"]
    assert (trial_job["apiVersion"], trial_job["kind"]) == ("batch/v1", "Job")
    # Katib sets the Job's metadata (name, namespace, labels) when it creates a trial.
    assert schema_problem({**trial_job, "metadata": {"name": "trial"}}) is None
    pod = trial_job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == K8S_SERVICE_ACCOUNT
    gpu = path.parent.name == "gpu"
    limits = primary_container(experiment)["resources"].get("limits", {})
    assert (GPU_RESOURCE in limits) == gpu
    if gpu:
        assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


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


# ---------------------------------------------------------------- kind cluster config


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


# ---------------------------------------------------------------- kind_e2e.sh skips cleanly


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
    ir = yaml.safe_load(out.read_text())
    assert set(PIPELINE_ARTIFACT_TASKS) <= set(ir["root"]["dag"]["tasks"])
    images = {executor["container"]["image"] for executor in ir["deploymentSpec"]["executors"].values()}
    assert KIND_IMAGE in images
    assert not any(image.startswith("ghcr.io/") for image in images), images
