"""Pod Security `restricted` for every pod the study starts, and trials without API rights.

The rules are tests/fixtures/pod_security.py (the Kubernetes documentation's baseline and
restricted controls, as Pod Security Admission checks them). They are applied to every pod spec of
every rendered kustomize root and to the trial Job of every Katib Experiment: the checked-in ones
(katib/experiments/, gpu/) and one built afresh the way a sweep step builds it. The checker is
first shown to catch each control it encodes, so a pass means something.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from components.core.settings import K8S_TRIAL_SERVICE_ACCOUNT
from components.profile_check import load_profile
from components.sweeps import SWEEPS
from katib.experiments import ExperimentOptions, build_experiment
from tests.fixtures.kustomize import REPO, ROOTS, needs_kubectl, rendered
from tests.fixtures.pod_security import BASELINE, RESTRICTED, pod_specs, violations

EXPERIMENT_FILES = sorted((REPO / "katib" / "experiments").glob("*.yaml")) + sorted(
    (REPO / "katib" / "experiments" / "gpu").glob("*.yaml"))

GOOD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "i",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "x"}},
                {"name": "s", "secret": {"secretName": "k"}}],
}


def _mutate(change):
    spec = copy.deepcopy(GOOD)
    change(spec, spec["containers"][0], spec["containers"][0]["securityContext"])
    return spec


# (what is changed, the control that must object, the level that has it)
BREAKS = [
    (lambda p, c, s: p.update(hostNetwork=True), "Host Namespaces", BASELINE),
    (lambda p, c, s: p.update(hostPID=True), "Host Namespaces", BASELINE),
    (lambda p, c, s: s.update(privileged=True), "Privileged Containers", BASELINE),
    (lambda p, c, s: s["capabilities"].update(add=["SYS_ADMIN"]), "Capabilities", BASELINE),
    (lambda p, c, s: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "HostPath Volumes", BASELINE),
    (lambda p, c, s: c.update(ports=[{"containerPort": 80, "hostPort": 80}]), "Host Ports", BASELINE),
    (lambda p, c, s: s.update(seLinuxOptions={"user": "root"}), "SELinux", BASELINE),
    (lambda p, c, s: s.update(procMount="Unmasked"), "/proc Mount Type", BASELINE),
    (lambda p, c, s: s.update(seccompProfile={"type": "Unconfined"}), "Seccomp", BASELINE),
    (lambda p, c, s: s.update(appArmorProfile={"type": "Unconfined"}), "AppArmor", BASELINE),
    (lambda p, c, s: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "Sysctls",
     BASELINE),
    (lambda p, c, s: s.update(windowsOptions={"hostProcess": True}), "HostProcess", BASELINE),
    (lambda p, c, s: c.update(livenessProbe={"tcpSocket": {"port": 1, "host": "10.0.0.1"}}), "Host Probes", BASELINE),
    (lambda p, c, s: p["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}), "Volume Types",
     RESTRICTED),
    (lambda p, c, s: s.pop("allowPrivilegeEscalation"), "Privilege Escalation", RESTRICTED),
    (lambda p, c, s: p["securityContext"].pop("runAsNonRoot"), "Running as Non-root", RESTRICTED),
    (lambda p, c, s: s.update(runAsNonRoot=False), "Running as Non-root", RESTRICTED),
    (lambda p, c, s: s.update(runAsUser=0), "Running as Non-root user", RESTRICTED),
    (lambda p, c, s: p["securityContext"].pop("seccompProfile"), "Seccomp", RESTRICTED),
    (lambda p, c, s: s.pop("capabilities"), "Capabilities", RESTRICTED),
    (lambda p, c, s: s["capabilities"].update(add=["CHOWN"]), "Capabilities", RESTRICTED),
    (lambda p, c, s: p.update(initContainers=[{"name": "init", "image": "i"}]), "Privilege Escalation", RESTRICTED),
]


def test_a_hardened_pod_passes():
    assert violations(GOOD, level=RESTRICTED) == []
    # Every container may say it instead of the pod.
    spec = copy.deepcopy(GOOD)
    pod_ctx = spec.pop("securityContext")
    spec["containers"][0]["securityContext"].update(runAsNonRoot=True, seccompProfile=pod_ctx["seccompProfile"])
    assert violations(spec, level=RESTRICTED) == []


@pytest.mark.parametrize("change, control, level", BREAKS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BREAKS)])
def test_the_checker_catches_each_control(change, control, level):
    spec = _mutate(change)
    problems = violations(spec, level=RESTRICTED)
    assert any(p.startswith(control) for p in problems), problems
    baseline = violations(spec, level=BASELINE)
    if level == BASELINE:
        assert any(p.startswith(control) for p in baseline), baseline
    else:
        assert not any(p.startswith(control) for p in baseline), f"{control} is restricted-only: {baseline}"


def test_the_checker_reads_annotations_and_finds_every_pod_kind():
    assert violations(GOOD, {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
                      level=BASELINE)
    job = {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": GOOD}}}
    experiment = {"kind": "Experiment", "metadata": {"name": "e"}, "spec": {"trialTemplate": {"trialSpec": job}}}
    cron = {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": job["spec"]}}}
    for doc in (job, experiment, cron):
        assert [spec for _, spec, _ in pod_specs(doc)] == [GOOD]


# ---------------------------------------------------------------- the study's pods


@needs_kubectl
@pytest.mark.parametrize("root", ROOTS)
def test_every_rendered_pod_is_restricted(root):
    problems = [f"{where}: {p}" for doc in rendered(root) for where, spec, meta in pod_specs(doc)
                for p in violations(spec, meta, level=RESTRICTED)]
    assert problems == []


def _fresh_experiments() -> dict[str, dict]:
    """Experiments as a sweep step builds them (katib.experiments.build_experiment), CPU and GPU."""
    sweeps = load_profile("smoke")["sweeps"]
    out = {}
    for gpu in (False, True):
        for name, sweep in SWEEPS.items():
            opts = ExperimentOptions.from_profile(sweeps, data_uri="gs://b/data", output_root="gs://b/out", gpu=gpu)
            out[f"{name}{'-gpu' if gpu else ''}"] = build_experiment(sweep, opts)
    return out


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.relative_to(REPO / "katib").as_posix())
def test_every_checked_in_trial_template_is_restricted(path):
    experiment = yaml.safe_load(path.read_text())
    found = list(pod_specs(experiment))
    assert len(found) == 1
    [(where, spec, meta)] = found
    assert violations(spec, meta, level=RESTRICTED) == []


def test_trials_built_by_a_sweep_step_are_restricted_and_have_no_api_access():
    for name, experiment in _fresh_experiments().items():
        [(where, spec, meta)] = list(pod_specs(experiment))
        assert violations(spec, meta, level=RESTRICTED) == [], name
        assert spec["serviceAccountName"] == K8S_TRIAL_SERVICE_ACCOUNT, name
        assert spec["automountServiceAccountToken"] is False, name


def _with_katibs_sidecar(spec: dict, inject_security_context: bool) -> dict:
    """The trial pod after Katib's pod webhook (kubeflow/katib pkg/webhook/v1beta1/pod/inject_webhook.go,
    v0.19.0): the metrics-collector sidecar is appended, with a copy of the first container's
    securityContext only when katib-config's init.controller.injectSecurityContext is true
    (pkg/apis/config/v1beta1/types.go)."""
    pod = copy.deepcopy(spec)
    sidecar = {"name": "metrics-logger-and-collector", "image": "ghcr.io/kubeflow/katib/file-metrics-collector"}
    if inject_security_context and pod["containers"][0].get("securityContext"):
        sidecar["securityContext"] = copy.deepcopy(pod["containers"][0]["securityContext"])
    pod["containers"].append(sidecar)
    pod["shareProcessNamespace"] = True
    return pod


def test_trial_pods_stay_restricted_after_katib_injects_its_collector_with_inject_security_context():
    [(_, spec, meta)] = list(pod_specs(yaml.safe_load(EXPERIMENT_FILES[0].read_text())))
    assert violations(_with_katibs_sidecar(spec, inject_security_context=True), meta, level=RESTRICTED) == []
    # Without the setting the sidecar lacks the container-level controls (what the README warns about).
    problems = violations(_with_katibs_sidecar(spec, inject_security_context=False), meta, level=RESTRICTED)
    assert problems and all("metrics-logger-and-collector" in p for p in problems)


@pytest.mark.parametrize("algorithm", ["pbt", "hyperband"])
def test_trials_of_the_other_searches_are_restricted_too(algorithm):
    from components.sweeps import SWEEPS
    from katib.experiments import ExperimentOptions, build_experiment

    opts = ExperimentOptions(data_uri="gs://b/d", output_root="gs://b/o", algorithm=algorithm, parallel_trials=9)
    [(where, spec, meta)] = list(pod_specs(build_experiment(SWEEPS["activations"], opts)))
    assert violations(spec, meta, level=RESTRICTED) == []
