"""Each identity a launcher runs as may make every call katib/backends/cluster/ makes, and no more.

The calls are not a hand-written list: the launcher is run, through the real kubernetes client,
against tests/fixtures/fake_k8s.py in every situation it handles (watch, polling, an existing
Experiment reused or replaced, failure, timeout, --delete), as a sweep step runs it (ClusterBackend,
which also lists the Experiment's Trials; `study katib launch` makes a subset of those calls), and
each HTTP request it sends is turned into what the API server's authorizer checks (tests/fixtures/rbac.py). The rendered
manifests' Roles and bindings are then evaluated as Kubernetes RBAC does.

Who runs the launcher (upstream facts, named where they are used):
- standalone KFP: every step pod runs as ServiceAccount pipeline-runner in KFP's namespace
  (kubeflow/pipelines backend/src/apiserver/common/const.go DefaultPipelineRunnerServiceAccount;
  manifests/kustomize/env/platform-agnostic sets namespace kubeflow; KFP 2.14.3, as kind_e2e.sh installs);
- multi-user Kubeflow: default-editor in the user's profile namespace (kubeflow/pipelines
  manifests/kustomize/base/installs/multi-user/api-service/params.env DEFAULTPIPELINERUNNERSERVICEACCOUNT,
  KFP 2.14.3; kubeflow/kubeflow components/profile-controller/controllers/profile_controller.go,
  commit 0429a23c, creates it and binds it to the ClusterRole kubeflow-edit);
- a pod of our own that runs `study katib launch`: fmstudy-runner.
"""

from __future__ import annotations

import copy
import functools

import pytest

from components.core.settings import K8S_NAMESPACE, K8S_SERVICE_ACCOUNT
from katib.backends.cluster import ClusterBackend, ExperimentFailed, LaunchTimeout
from katib.validate import load_experiment
from tests.fixtures.fake_k8s import FakeKubernetes, failing, katib_trial, never_finishing, succeeding
from tests.fixtures.kustomize import MULTI_USER, REPO, needs_kubectl, rendered, root_namespace
from tests.fixtures.rbac import Call, Rbac, request_attributes, service_account

OPTIMIZER_YAML = REPO / "katib" / "experiments" / "optimizer.yaml"
WINNER = {"optimizer": "Nadam"}
KFP_NAMESPACE = "kubeflow"
STANDALONE_ROOTS = ("overlays/kind", "overlays/kind-nas", "overlays/gpu-cloud", "overlays/gpu-cloud-nas")

# Upstream RBAC of a multi-user Kubeflow install, as its manifests and controller create it.
AGGREGATE_TO_EDIT = "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit"
# kubeflow/manifests common/kubeflow-roles/base/cluster-roles.yaml (commit f782bdb8): kubeflow-edit has no
# rules of its own; it aggregates every ClusterRole labelled aggregate-to-kubeflow-edit.
KUBEFLOW_EDIT = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "kubeflow-edit"},
                 "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO_EDIT: "true"}}]},
                 "rules": []}
# kubeflow/katib manifests/v1beta1/installs/katib-with-kubeflow/kubeflow-katib-roles.yaml (v0.19.0, the
# version kind_e2e.sh installs; unchanged on master):
# Katib's edit role carries that label. katib-standalone (what kind_e2e.sh installs) has no such role.
KATIB_EDIT = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
              "metadata": {"name": "kubeflow-katib-edit", "labels": {AGGREGATE_TO_EDIT: "true"}},
              "rules": [{"apiGroups": ["kubeflow.org"], "resources": ["experiments", "trials", "suggestions"],
                         "verbs": ["get", "list", "watch", "create", "delete", "deletecollection", "patch",
                                   "update"]}]}


def profile_binding(namespace: str) -> dict:
    """The RoleBinding the profile controller makes for default-editor (updateServiceAccount)."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "default-editor", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubeflow-edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "default-editor", "namespace": namespace}]}


# ---------------------------------------------------------------- the launcher's calls, recorded


def _scenarios(experiment: dict, name: str):
    """(server behaviour, Experiment already there, launch options, error expected) for every path."""
    other = copy.deepcopy(experiment)
    other["spec"]["maxTrialCount"] = 1
    return [
        ({"steps": succeeding(name, WINNER)}, None, {"delete_after": True}, None),  # watch, --delete
        ({"steps": succeeding(name, WINNER), "watch": "error"}, None, {}, None),  # watch fails: polling
        ({"steps": succeeding(name, WINNER), "watch": "gone"}, None, {}, None),
        ({"steps": succeeding(name, WINNER), "deletion_gets": 1}, other, {"replace_existing": True}, None),
        ({}, experiment, {}, None),  # the same spec exists: reused (its script: succeeded)
        ({"steps": failing(name)}, None, {"delete_after": True}, ExperimentFailed),
        ({"steps": never_finishing(name)}, None, {"timeout_s": 0.6}, LaunchTimeout),
        ({"steps": never_finishing(name), "watch": "error"}, None, {"timeout_s": 0.6, "delete_after": True},
         LaunchTimeout),
    ]


@functools.cache
def launcher_calls(namespace: str) -> frozenset[tuple[Call, str | None]]:
    """Every (Call, object name) the launcher sends when it runs in ``namespace``."""
    experiment = load_experiment(str(OPTIMIZER_YAML))
    name = experiment["metadata"]["name"]
    calls = set()
    trials = {name: [katib_trial(name, 1, WINNER), katib_trial(name, 2, {"optimizer": "Ftrl"}, "Failed", None)]}
    for behaviour, existing, options, error in _scenarios(experiment, name):
        with FakeKubernetes(namespaces=(namespace,), trials=trials, **behaviour) as fake:
            if existing is not None:
                body = {**copy.deepcopy(existing), "metadata": {**existing["metadata"], "namespace": namespace}}
                fake.add_experiment(body, steps=succeeding(name, WINNER))
            options = {"timeout_s": 10.0, "poll_s": 0.02, **options}
            try:
                ClusterBackend(api_client=fake.api_client(), namespace=namespace, **options).run(
                    experiment, log=lambda line: None)
            except (LaunchTimeout, ExperimentFailed) as err:
                assert error is not None and isinstance(err, error), err
            else:
                assert error is None, f"{behaviour}: expected {error}"
            calls |= {request_attributes(r.method, r.path, r.query) for r in fake.requests}
    return frozenset(calls)


def as_calls(recorded) -> set[Call]:
    return {call for call, _ in recorded}


# ---------------------------------------------------------------- the recording itself


def test_the_recording_sees_the_launchers_requests():
    calls = launcher_calls(K8S_NAMESPACE)
    verbs = {call.verb for call in as_calls(calls)}
    # At least what every launch does: create, a watch or a get; --delete and --replace delete.
    assert {"create", "get", "watch", "delete"} <= verbs
    assert {(c.group, c.resource, c.namespace) for c in as_calls(calls)} == {
        ("kubeflow.org", "experiments", K8S_NAMESPACE), ("kubeflow.org", "trials", K8S_NAMESPACE)}
    # A finished sweep lists its Experiment's Trials (by label), and does nothing else with trials.
    assert {c.verb for c in as_calls(calls) if c.resource == "trials"} == {"list"}
    assert any(name == "fmstudy-optimizer" for call, name in calls if call.verb == "get")


def test_request_attributes_follow_the_api_servers_request_info():
    assert request_attributes("GET", "/api/v1/namespaces/a/pods/p/log", {}) == (Call("", "pods/log", "get", "a"), "p")
    assert request_attributes("GET", "/apis/kubeflow.org/v1beta1/namespaces/a/experiments", {"watch": "True"})[0] \
        == Call("kubeflow.org", "experiments", "watch", "a")
    assert request_attributes("DELETE", "/apis/batch/v1/namespaces/a/jobs", {})[0].verb == "deletecollection"
    assert request_attributes("PATCH", "/api/v1/namespaces/a/pods/p", {})[0].verb == "patch"


def test_rbac_evaluation_honours_namespaces_wildcards_names_and_aggregation():
    sa = service_account("ns", "me")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "ns"},
            "rules": [{"apiGroups": ["kubeflow.org"], "resources": ["experiments"], "verbs": ["get"],
                       "resourceNames": ["mine"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "b", "namespace": "ns"}, "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": "me", "namespace": "ns"}]}
    rbac = Rbac(role, binding)
    get = Call("kubeflow.org", "experiments", "get", "ns")
    assert rbac.allows(sa, get, "mine") and not rbac.allows(sa, get, "theirs")
    assert not rbac.allows(sa, get._replace(namespace="other"), "mine"), "a RoleBinding is one namespace"
    assert not rbac.allows(service_account("other", "me"), get, "mine"), "the subject's namespace counts"
    edit = Rbac(KUBEFLOW_EDIT, KATIB_EDIT, profile_binding("p"))
    assert edit.allows(service_account("p", "default-editor"), Call("kubeflow.org", "trials", "list", "p"))
    assert not Rbac(KUBEFLOW_EDIT, profile_binding("p")).allows(
        service_account("p", "default-editor"), Call("kubeflow.org", "trials", "list", "p"))
    star = Rbac({**role, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}, binding)
    assert star.allows(sa, Call("", "pods/log", "get", "ns"), "x")


# ---------------------------------------------------------------- each identity, each install mode


def assert_exactly_the_launchers_calls(rbac: Rbac, subject, namespace: str) -> None:
    recorded = launcher_calls(namespace)
    denied = sorted(f"{c.verb} {c.resource} in {c.namespace}" for c, name in recorded
                    if not rbac.allows(subject, c, name))
    assert denied == [], f"{subject.namespace}/{subject.name} would get 403 for: {denied}"
    everywhere = rbac.bound_namespaces(subject) | {namespace}
    extra = sorted(map(tuple, rbac.grants(subject, everywhere) - as_calls(recorded)))
    assert extra == [], f"{subject.namespace}/{subject.name} may do more than the launcher needs: {extra}"
    assert not rbac.has_cluster_binding(subject)


@needs_kubectl
@pytest.mark.parametrize("root", STANDALONE_ROOTS)
def test_standalone_kfp_steps_may_make_exactly_the_launchers_calls(root):
    rbac = Rbac(*rendered(root))
    assert_exactly_the_launchers_calls(rbac, service_account(KFP_NAMESPACE, "pipeline-runner"), K8S_NAMESPACE)


@needs_kubectl
def test_without_the_kfp_component_pipeline_runner_gets_403():
    # The base alone (what the overlays bound before): KFP's step identity may not create the Experiment.
    rbac = Rbac(*rendered("base"))
    create = Call("kubeflow.org", "experiments", "create", K8S_NAMESPACE)
    assert not rbac.allows(service_account(KFP_NAMESPACE, "pipeline-runner"), create)
    assert rbac.allows(service_account(K8S_NAMESPACE, K8S_SERVICE_ACCOUNT), create)


@needs_kubectl
@pytest.mark.parametrize("root", ("base", *STANDALONE_ROOTS, MULTI_USER))
def test_the_studys_own_launcher_account_may_make_exactly_the_launchers_calls(root):
    namespace = root_namespace(root)
    rbac = Rbac(*rendered(root))
    assert_exactly_the_launchers_calls(rbac, service_account(namespace, K8S_SERVICE_ACCOUNT), namespace)


@needs_kubectl
def test_multi_user_steps_may_make_exactly_the_launchers_calls_in_the_profile_namespace():
    profile = root_namespace(MULTI_USER)
    editor = service_account(profile, "default-editor")
    # What the overlay itself grants: exactly the launcher's calls, in the profile namespace only.
    assert_exactly_the_launchers_calls(Rbac(*rendered(MULTI_USER)), editor, profile)
    # It widens nothing cluster-wide: no ClusterRole that kubeflow-edit would aggregate.
    assert not [d for d in rendered(MULTI_USER) if d["kind"] == "ClusterRole"]


@needs_kubectl
def test_multi_user_launch_works_with_and_without_katibs_kubeflow_roles():
    profile = root_namespace(MULTI_USER)
    editor = service_account(profile, "default-editor")
    recorded = launcher_calls(profile)
    upstream_katib_with_kubeflow = Rbac(KUBEFLOW_EDIT, KATIB_EDIT, profile_binding(profile))
    katib_standalone = Rbac(KUBEFLOW_EDIT, profile_binding(profile))
    # Katib installed with Kubeflow: its aggregated edit role already covers every launcher call.
    assert all(upstream_katib_with_kubeflow.allows(editor, c, n) for c, n in recorded)
    # katib-standalone under Kubeflow: kubeflow-edit holds no Katib rights; our binding supplies them.
    assert not any(katib_standalone.allows(editor, c, n) for c, n in recorded)
    ours = Rbac(KUBEFLOW_EDIT, profile_binding(profile), *rendered(MULTI_USER))
    assert all(ours.allows(editor, c, n) for c, n in recorded)
