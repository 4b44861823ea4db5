"""The cluster manifests, checked without a cluster.

Each kustomize root is rendered with `kubectl kustomize` (kustomize v5, built into kubectl) and
every object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an
unknown or misspelled field fails); then what the study relies on is asserted: the namespace label
Katib needs, RBAC confined to the namespace, the overlays' images, node selection and settings, the
AutoKeras search as an opt-in. RBAC against the launcher's real calls is in test_k8s_rbac.py, Pod
Security and the trials' account in test_k8s_pod_security.py.
The Katib Experiments' trial Jobs get the same schema check plus Katib's own rules. kind_e2e.sh is
run here only to check that it skips cleanly where kind is missing.
"""

from __future__ import annotations

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
from components.settings import IMAGE_UID, K8S_NAMESPACE, K8S_SERVICE_ACCOUNT, K8S_TRIAL_SERVICE_ACCOUNT
from katib import launcher
from katib.experiments import cluster_experiments
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
from tests.fixtures.kustomize import (
    K8S,
    MULTI_USER,
    NAS_ROOTS,
    REPO,
    ROOTS,
    kustomization,
    kustomize,
    needs_kubectl,
    objects,
    one,
    pod_specs,
    rendered,
    root_namespace,
)

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
NAS_JOBS = {"Job/nas-chief", "Job/nas-workers"}
LAUNCHER_ROLE = "fmstudy-launcher"


# ---------------------------------------------------------------- helpers


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
    expected = root_namespace(root)
    if root == MULTI_USER:
        # The profile controller owns (and labels) a profile's namespace; the overlay must not create it.
        assert objects(root, "Namespace") == []
        assert expected != K8S_NAMESPACE
    else:
        namespace = one(root, "Namespace", K8S_NAMESPACE)
        assert namespace["metadata"]["labels"][KATIB_INJECTION_LABEL] == "enabled"
    for doc in rendered(root):
        if doc["kind"] not in CLUSTER_SCOPED_KINDS:
            assert doc["metadata"].get("namespace") == expected, f"{doc['kind']}/{doc['metadata']['name']}"
    assert one(root, "ConfigMap", SETTINGS_CONFIGMAP)["data"]["STUDY_NAMESPACE"] == expected


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_rbac_is_namespaced_and_without_wildcards(root):
    # What each identity may do, against the launcher's recorded calls: test_k8s_rbac.py.
    kinds = {doc["kind"] for doc in rendered(root)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    roles = objects(root, "Role")
    assert [r["metadata"]["name"] for r in roles] == [LAUNCHER_ROLE]
    for rule in roles[0]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert not rule.get("resourceNames") or "*" not in rule["resourceNames"]
        assert rule["resources"] == [launcher.PLURAL], f"only Experiments: {rule}"
    for binding in objects(root, "RoleBinding"):
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LAUNCHER_ROLE}
    binding = one(root, "RoleBinding", LAUNCHER_ROLE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": K8S_SERVICE_ACCOUNT,
                                    "namespace": root_namespace(root)}]


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_pods_run_as_the_trial_account_without_a_token_and_no_secret_is_rendered(root):
    assert objects(root, "Secret") == [], "the GCS key Secret is created by hand, never committed"
    for where, spec in pod_specs(root).items():
        # No pod the manifests start calls the API server: the account without rights, no token.
        assert spec.get("serviceAccountName") == K8S_TRIAL_SERVICE_ACCOUNT, where
        assert spec.get("automountServiceAccountToken") is False, where
    trial_account = one(root, "ServiceAccount", K8S_TRIAL_SERVICE_ACCOUNT)
    assert trial_account.get("automountServiceAccountToken") is False
    for binding in objects(root, "RoleBinding") + objects(root, "ClusterRoleBinding"):
        assert all(s["name"] != K8S_TRIAL_SERVICE_ACCOUNT for s in binding["subjects"]), "trials get no API rights"


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_every_object_is_labelled_as_the_studys(root):
    # `kubectl delete -l app.kubernetes.io/part-of=fmstudy` finds everything an overlay applied.
    unlabelled = [f"{d['kind']}/{d['metadata']['name']}" for d in rendered(root)
                  if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") != "fmstudy"]
    assert unlabelled == []
    for doc in rendered(root):
        nas = doc["metadata"]["name"].startswith(("nas-", "nas-settings"))
        assert (doc["metadata"]["labels"].get("app.kubernetes.io/component") == "nas") == nas, doc["metadata"]


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_applying_an_overlay_starts_no_search_unless_it_opts_in(root):
    jobs = {name for name in pod_specs(root) if name.startswith("Job/")}
    if root in NAS_ROOTS:
        assert NAS_JOBS <= jobs
        assert objects(root, "PersistentVolumeClaim")
    else:
        assert not jobs & NAS_JOBS, f"{root} starts the AutoKeras search"
        assert not objects(root, "PersistentVolumeClaim")


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
def test_workload_identity_is_one_setting_of_the_gpu_cloud_overlay():
    setting = yaml.safe_load((K8S / "overlays" / "gpu-cloud" / "workload-identity.yaml").read_text())
    value = setting["data"]["GCP_SERVICE_ACCOUNT"]
    assert value.endswith(".iam.gserviceaccount.com")
    for root in ("overlays/gpu-cloud", "overlays/gpu-cloud-nas"):
        accounts = objects(root, "ServiceAccount")
        assert {a["metadata"]["name"] for a in accounts} == {K8S_SERVICE_ACCOUNT, K8S_TRIAL_SERVICE_ACCOUNT}
        for account in accounts:
            assert account["metadata"]["annotations"][WORKLOAD_IDENTITY] == value, root
        assert objects(root, "ConfigMap") and all(c["metadata"]["name"] != setting["metadata"]["name"]
                                                  for c in objects(root, "ConfigMap")), "local-config: not rendered"
    # Written once: every other place gets it from the replacement.
    holders = [p for p in K8S.rglob("*.yaml") if value in p.read_text()]
    assert holders == [K8S / "overlays" / "gpu-cloud" / "workload-identity.yaml"]
    # Off GKE nothing claims a workload identity.
    for root in ("base", "overlays/kind", "overlays/kind-nas", MULTI_USER):
        for account in objects(root, "ServiceAccount"):
            assert WORKLOAD_IDENTITY not in (account["metadata"].get("annotations") or {}), root


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
@pytest.mark.parametrize("root", ["overlays/kind", "overlays/kind-nas"])
def test_kind_overlay_runs_the_loaded_image_on_cpu(root):
    for where, spec in pod_specs(root).items():
        for container in spec["containers"]:
            if where != EMULATOR:
                assert container["image"] == KIND_IMAGE, where
            assert GPU_RESOURCE not in container.get("resources", {}).get("limits", {}), where
        assert not spec.get("nodeSelector") and not spec.get("tolerations"), where
    data = one(root, "ConfigMap", SETTINGS_CONFIGMAP)["data"]
    assert f"{data['STUDY_IMAGE_REGISTRY']}/trainer:{data['STUDY_IMAGE_TAG']}" == KIND_IMAGE
    assert {"name": "ghcr.io/fmstudy/trainer", "newName": "fmstudy/trainer", "newTag": "dev"} in \
        kustomization(root)["images"]
    # kind-nas names the image again (its component's pods come after kind's transformers): the same one.
    assert kustomization("overlays/kind-nas")["images"] == kustomization("overlays/kind")["images"]


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
                 for e in cluster_experiments(load_profile("seed")).values()}
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
    assert pod["serviceAccountName"] == K8S_TRIAL_SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is False
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
