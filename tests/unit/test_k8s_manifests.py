"""The cluster manifests, checked without a cluster.

Each kustomize root is rendered with `kubectl kustomize` (kustomize v5, built into kubectl) and
every object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an
unknown or misspelled field fails); then what the study relies on is asserted: the namespace label
Katib needs, RBAC confined to the namespace, the overlays' images, node selection and settings, the
AutoKeras search as an opt-in. RBAC against the launcher's real calls is in test_k8s_rbac.py, Pod
Security and the trials' account in test_k8s_pod_security.py, the AutoKeras search's manifests in
test_k8s_nas.py, the kind end-to-end's helpers and skips in test_kind_e2e_checks.py.
The Katib Experiments' trial Jobs get the same schema check plus Katib's own rules.
"""

from __future__ import annotations

import os
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import pytest
import yaml

from components.core.settings import K8S_NAMESPACE, K8S_SERVICE_ACCOUNT, K8S_TRIAL_SERVICE_ACCOUNT
from components.profile_check import load_profile
from katib.backends import cluster as launcher
from katib.validate import validate_experiment
from tests.e2e.kind_e2e import (
    SETTINGS_CONFIGMAP,
    primary_container,
)
from tests.fixtures.kustomize import (
    K8S,
    KIND_IMAGE,
    MULTI_USER,
    NAS_JOBS,
    NAS_ROOTS,
    REPO,
    ROOTS,
    default_settings,
    kustomization,
    kustomize,
    needs_kubectl,
    objects,
    one,
    option_value,
    pod_specs,
    rendered,
    root_namespace,
    schema_problem,
)

EXPERIMENT_FILES = sorted((REPO / "katib" / "experiments").glob("*.yaml")) + sorted(
    (REPO / "katib" / "experiments" / "gpu").glob("*.yaml"))
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
GPU_ACCELERATOR = "nvidia-tesla-t4"
GPU_RESOURCE = "nvidia.com/gpu"
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"
KATIB_INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                        "PersistentVolume", "StorageClass", "PriorityClass"}
EMULATOR = "Deployment/gcs-emulator"  # the kind overlay's in-cluster GCS
LAUNCHER_ROLE = "fmstudy-launcher"


# ---------------------------------------------------------------- helpers


def locked_version(package: str) -> str:
    versions = {p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"] if p["name"] == package}
    assert len(versions) == 1, f"{package}: uv.lock holds {sorted(versions) or 'no version'}"
    return versions.pop()


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
        assert rule["resources"] in ([launcher.PLURAL], [launcher.TRIAL_PLURAL]), f"only Experiments, Trials: {rule}"
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

