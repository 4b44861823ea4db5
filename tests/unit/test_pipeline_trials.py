"""The Experiments a compiled pipeline's sweep step creates carry the compile options, whatever the step pod's
environment holds, and each pipeline run gets its own.

The test compiles with overrides, reads the sweep task's inputs out of the compiled YAML as KFP's driver
resolves them (root parameters' defaults, constants, and the run id placeholder, which the driver replaces
by the run's id: kubeflow/pipelines backend/src/v2/driver/resolve.go, commit 039ecf96), runs the step's own
body with them against a local API server (tests/fixtures/fake_k8s.py), and reads the Experiment it POSTed.
"""

import pytest
import yaml
from kfp import dsl

from katib.sweep import KATIB_NAME_LIMIT, RUN_LABEL, run_experiment_name
from pipelines.cluster import ClusterOptions, kind_options
from pipelines.compile import compile_pipeline
from pipelines.steps.sweep import run_sweep
from tests.fixtures.fake_k8s import FakeKubernetes, katib_trial, succeeding

RUN_A = "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
RUN_B = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # What a step pod really has: none of the compile-time settings in its environment.
    for name in ("STUDY_IMAGE_REGISTRY", "STUDY_IMAGE_TAG", "STUDY_NAMESPACE", "STUDY_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)


def sweep_task_inputs(tmp_path, options: ClusterOptions, run_id: str, task: str = "run-sweep") -> dict:
    """The sweep task's parameter inputs as the driver resolves them for run ``run_id``."""
    out = tmp_path / "pipeline.yaml"
    compile_pipeline(str(out), profile="smoke", cluster=options)
    spec = next(yaml.safe_load_all(out.read_text()))
    roots = {k: v.get("defaultValue") for k, v in spec["root"]["inputDefinitions"]["parameters"].items()}
    values = {}
    for name, given in spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"].items():
        if "componentInputParameter" in given:
            values[name] = roots[given["componentInputParameter"]]
        elif "runtimeValue" in given:
            constant = given["runtimeValue"]["constant"]
            values[name] = run_id if constant == dsl.PIPELINE_JOB_ID_PLACEHOLDER else constant
    return values


def run_step(tmp_path, fake: FakeKubernetes, inputs: dict, run_id: str, monkeypatch) -> dict:
    """The sweep step's body, as its pod runs it, with a kubeconfig for the fake API server; the POSTed Experiment."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "t"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    name = run_experiment_name(inputs["stage"], run_id)
    # The winning Trial, as Katib's controller leaves it (succeeding() names it as the best trial).
    fake.trials[name] = [katib_trial(name, 1, {"optimizer": "Nadam"}, objective=("val_accuracy", 0.9))]
    data = dsl.Dataset(uri=str(tmp_path / "data"))
    sweep = dsl.Artifact(uri=str(tmp_path / run_id / "sweep"))
    outputs = run_sweep.python_func(dataset=data, sweep=sweep, metrics=dsl.Metrics(uri=str(tmp_path / "m")),
                                    **inputs)
    assert outputs.winner["optimizer"] == "Nadam"
    (posted,) = [r.body for r in fake.calls("POST") if r.body["metadata"]["name"] == name]
    return posted


def trial_pod(experiment: dict) -> dict:
    return experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]


def test_the_experiment_carries_the_compile_options_not_the_step_pods_environment(tmp_path, monkeypatch):
    options = ClusterOptions(image="registry.example/fm/trainer:7", gpu_image="registry.example/fm/trainer-gpu:7",
                             namespace="kubeflow-user-alice", work_root=str(tmp_path / "work"),
                             gcs_key_secret="fmstudy-gcs-key", trial_cpu="1", trial_memory="3Gi")
    inputs = sweep_task_inputs(tmp_path, options, RUN_A)
    name = run_experiment_name("optimizer", RUN_A)
    with FakeKubernetes(steps=succeeding(name, {"optimizer": "Nadam"}),
                        namespaces=("kubeflow-user-alice",)) as fake:
        experiment = run_step(tmp_path, fake, inputs, RUN_A, monkeypatch)

    assert experiment["metadata"]["namespace"] == "kubeflow-user-alice"
    pod = trial_pod(experiment)
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/fm/trainer:7"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "3Gi"}
    # Key-secret mode: the trial Job gets the key too (volume, mount, GOOGLE_APPLICATION_CREDENTIALS).
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/gcs/key.json"
    assert {"name": "gcs-key", "secret": {"secretName": "fmstudy-gcs-key"}} in pod["volumes"]
    assert {"name": "gcs-key", "mountPath": "/var/secrets/gcs", "readOnly": True} in container["volumeMounts"]
    args = dict(zip(container["command"][2::2], container["command"][3::2]))
    assert args["--output"].startswith(f"{tmp_path}/work/{RUN_A}/sweeps/optimizer/")


def test_kind_trials_reach_kfps_minio_by_s3(tmp_path, monkeypatch):
    options = kind_options(image="fmstudy/trainer:dev", work_root=str(tmp_path / "work"))
    inputs = sweep_task_inputs(tmp_path, options, RUN_A)
    with FakeKubernetes(steps=succeeding(run_experiment_name("optimizer", RUN_A), {"optimizer": "Nadam"})) as fake:
        experiment = run_step(tmp_path, fake, inputs, RUN_A, monkeypatch)
    (container,) = trial_pod(experiment)["containers"]
    assert container["image"] == "fmstudy/trainer:dev"
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://minio-service.kubeflow:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "mlpipeline-minio-artifact",
                                                                   "key": "accesskey"}
    assert container["resources"]["requests"]["cpu"] == "500m"


def test_two_runs_create_two_experiments_and_neither_touches_the_other(tmp_path, monkeypatch):
    options = ClusterOptions(work_root=str(tmp_path / "work"))
    names = {run: run_experiment_name("optimizer", run) for run in (RUN_A, RUN_B)}
    assert names[RUN_A] != names[RUN_B] and all(len(n) <= KATIB_NAME_LIMIT for n in names.values())
    assert len(run_experiment_name("activations", RUN_A)) <= KATIB_NAME_LIMIT  # the longest stage name
    with FakeKubernetes() as fake:
        for run in (RUN_A, RUN_B):
            fake.steps = succeeding(names[run], {"optimizer": "Nadam"})
            experiment = run_step(tmp_path, fake, sweep_task_inputs(tmp_path, options, run), run, monkeypatch)
            assert experiment["metadata"]["labels"][RUN_LABEL] != ""
        # Run A's Experiment is still there after run B's sweep, and nobody deleted anything.
        assert set(fake.experiments) == {("fmstudy", names[RUN_A]), ("fmstudy", names[RUN_B])}
        assert fake.calls("DELETE") == []


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("sweep_cleanup", "stop", "sweep_cleanup 'stop': expected one of keep, delete"),
    ("work_root", "runs/work", "work_root 'runs/work': expected a gs:// or s3:// URI"),
])
def test_a_bad_run_parameter_is_one_line_before_anything_is_created(tmp_path, monkeypatch, setting, value, message):
    from components.core.errors import UserError

    inputs = {**sweep_task_inputs(tmp_path, ClusterOptions(), RUN_A), setting: value}
    with FakeKubernetes() as fake, pytest.raises(UserError) as caught:
        run_sweep.python_func(
            dataset=dsl.Dataset(uri=str(tmp_path / "data")), sweep=dsl.Artifact(uri=str(tmp_path / "sweep")),
            metrics=dsl.Metrics(uri=str(tmp_path / "m")), **inputs)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert fake.requests == [] and not (tmp_path / "sweep").exists()
