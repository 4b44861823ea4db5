"""The cluster pipeline as compiled IR: what KFP on Kubernetes will run."""

import yaml

from components.core.settings import TRAINER_GPU_IMAGE, TRAINER_IMAGE
from pipelines.cluster import ClusterOptions
from pipelines.compile import compile_pipeline

CHECKED_IN = "pipelines/compiled/study_pipeline.yaml"


def compiled(tmp_path, **options) -> tuple[dict, dict]:
    path = tmp_path / "pipeline.yaml"
    compile_pipeline(str(path), cluster=ClusterOptions(**options))
    spec, *platform = yaml.safe_load_all(path.read_text())
    # The second document (kfp-kubernetes settings) exists only when some step has them.
    return spec, platform[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if platform else {}


def all_tasks(spec: dict) -> dict:
    """Every task, the root DAG's and those inside its loops (a loop's sub-DAG component)."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for task in spec["root"]["dag"]["tasks"].values():
        if "parameterIterator" in task:
            tasks.update(spec["components"][task["componentRef"]["name"]]["dag"]["tasks"])
    return tasks


def test_checked_in_pipeline_is_what_the_code_compiles(tmp_path):
    from tests.conftest import REPO

    fresh = list(yaml.safe_load_all(compiled_text(tmp_path)))
    assert list(yaml.safe_load_all((REPO / CHECKED_IN).read_text())) == fresh, "stale: run `make pipeline`"


def compiled_text(tmp_path) -> str:
    path = tmp_path / "default.yaml"
    compile_pipeline(str(path))
    return path.read_text()


def test_cluster_defaults_sweeps_through_katib_and_artifacts_on_gcs(tmp_path):
    spec, _ = compiled(tmp_path)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["sweep_backend"]["defaultValue"] == "katib"
    assert params["epochs"]["defaultValue"] == 10 and params["train_size"]["defaultValue"] == 0
    assert spec["defaultPipelineRoot"].startswith("gs://")
    tasks = spec["root"]["dag"]["tasks"]
    assert {"prepare-data", "train-cnn", "evaluate-model", "run-sweep", "run-sweep-2", "run-sweep-3",
            "build-report"} <= set(tasks)
    # sweeps chained: B holds A's winner (its optimizer) fixed, C holds B's (optimizer and activations)
    b_inputs = tasks["run-sweep-2"]["inputs"]["parameters"]
    assert b_inputs["fixed"]["taskOutputParameter"] == {"outputParameterKey": "winner",
                                                        "producerTask": "run-sweep"}
    c_inputs = tasks["run-sweep-3"]["inputs"]["parameters"]
    assert c_inputs["fixed"]["taskOutputParameter"]["producerTask"] == "run-sweep-2"
    assert "fixed" not in tasks["run-sweep"]["inputs"]["parameters"]  # A starts from the hand-written CNN
    assert tasks["run-sweep"]["dependentTasks"] == ["prepare-data", "train-cnn"]
    report = tasks["build-report"]["inputs"]["artifacts"]
    assert {name: report[f"{name}_sweep"]["taskOutputArtifact"]["producerTask"]
            for name in ("optimizer", "activations", "filters")} == {
        "optimizer": "run-sweep", "activations": "run-sweep-2", "filters": "run-sweep-3"}


def test_the_transfer_runs_are_a_loop_over_the_bases_whose_runs_the_report_collects(tmp_path):
    """One loop iteration per base (each its own pod on the cluster), its run artifacts collected into
    the report's list input. KFP's backend resolves such an input since 2.14 (backend/src/v2/driver/
    resolve.go, resolveUpstreamArtifacts: a loop DAG's output artifacts are gathered over its
    iteration_count; kubeflow/pipelines#11725), the version tests/e2e/kind_e2e.sh installs."""
    from components.transfer.bases import BASES

    spec, _ = compiled(tmp_path)
    tasks = spec["root"]["dag"]["tasks"]
    (loop_name,) = [name for name, task in tasks.items() if "parameterIterator" in task]
    loop = tasks[loop_name]
    assert yaml.safe_load(loop["parameterIterator"]["items"]["raw"]) == list(BASES)
    item = loop["parameterIterator"]["itemInput"]
    dag = spec["components"][loop["componentRef"]["name"]]["dag"]
    transfer = dag["tasks"]["transfer-learning"]
    assert transfer["inputs"]["parameters"]["base"] == {"componentInputParameter": item}
    (output_key,) = dag["outputs"]["artifacts"]
    assert dag["outputs"]["artifacts"][output_key]["artifactSelectors"] == [
        {"outputArtifactKey": "run", "producerSubtask": "transfer-learning"}]
    report = tasks["build-report"]
    assert report["inputs"]["artifacts"]["transfers"] == {
        "taskOutputArtifact": {"outputArtifactKey": output_key, "producerTask": loop_name}}
    assert spec["components"][report["componentRef"]["name"]]["inputDefinitions"]["artifacts"]["transfers"][
        "isArtifactList"] is True
    assert loop_name in report["dependentTasks"]


def test_a_fourth_sweep_added_by_its_definition_is_a_task_fed_by_the_third(tmp_path):
    from tests.fixtures.trials.fourth_sweep import fourth_sweep

    with fourth_sweep():
        spec, _ = compiled(tmp_path)
    tasks = spec["root"]["dag"]["tasks"]
    inputs = tasks["run-sweep-4"]["inputs"]["parameters"]
    assert inputs["stage"] == {"runtimeValue": {"constant": "batch_size"}}
    assert inputs["fixed"]["taskOutputParameter"] == {"outputParameterKey": "winner", "producerTask": "run-sweep-3"}
    assert tasks["run-sweep-4"]["taskInfo"]["name"] == "sweep D: batch size"
    assert inputs["work_root"] == {"componentInputParameter": "work_root"}  # wired as every sweep is
    # The report step's inputs are written out: this test-only sweep has none, so it runs unreported.
    assert "run-sweep-4" not in tasks["build-report"]["dependentTasks"]
    spec, _ = compiled(tmp_path)
    assert "run-sweep-4" not in spec["root"]["dag"]["tasks"]


def test_training_retries_and_caching_switch(tmp_path):
    spec, _ = compiled(tmp_path, caching=False)
    tasks = all_tasks(spec)
    assert tasks["train-cnn"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["transfer-learning"]["retryPolicy"]["maxRetryCount"] == 2
    # enableCache false is omitted; a loop has no caching of its own, its tasks do
    assert all(task["cachingOptions"] == {} for task in tasks.values() if "parameterIterator" not in task)
    spec, _ = compiled(tmp_path)
    assert spec["root"]["dag"]["tasks"]["train-cnn"]["cachingOptions"] == {"enableCache": True}


def test_gcs_key_secret_is_mounted_and_named_in_the_environment(tmp_path):
    spec, executors = compiled(tmp_path, gcs_key_secret="fmstudy-gcs-key")
    assert set(executors) == set(spec["deploymentSpec"]["executors"]) and len(executors) == 10  # every step
    for config in executors.values():
        (volume,) = config["secretAsVolume"]
        assert volume["secretName"] == "fmstudy-gcs-key" and volume["mountPath"] == "/var/secrets/gcs"
    for executor in spec["deploymentSpec"]["executors"].values():
        env = {e["name"]: e["value"] for e in executor["container"].get("env", [])}
        assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/gcs/key.json"


def test_workload_identity_by_default_mounts_no_secret(tmp_path):
    spec, executors = compiled(tmp_path)
    assert not any("secretAsVolume" in config for config in executors.values())
    for name, executor in spec["deploymentSpec"]["executors"].items():
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e["name"] for e in executor["container"].get("env", [])}
        assert executor["container"]["image"] == (TRAINER_GPU_IMAGE if "transfer-learning" in name else TRAINER_IMAGE)


def test_what_a_run_may_change_is_a_pipeline_parameter_wired_into_every_sweep(tmp_path):
    spec, _ = compiled(tmp_path, namespace="kubeflow-user-alice", sweep_timeout_s=36000.0, sweep_cleanup="keep")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["sweep_timeout_s"]["defaultValue"] == 36000.0
    assert params["sweep_cleanup"]["defaultValue"] == "keep"
    assert params["katib_namespace"]["defaultValue"] == "kubeflow-user-alice"
    assert params["work_root"]["defaultValue"].startswith("gs://")
    tasks = spec["root"]["dag"]["tasks"]
    for name in ("run-sweep", "run-sweep-2", "run-sweep-3"):
        inputs = tasks[name]["inputs"]["parameters"]
        wired = {key: inputs[key]["componentInputParameter"] for key in
                 ("timeout_s", "sweep_cleanup", "katib_namespace", "trial_image", "trial_gpu_image", "work_root")}
        assert wired == {"timeout_s": "sweep_timeout_s", "sweep_cleanup": "sweep_cleanup",
                         "katib_namespace": "katib_namespace", "trial_image": "trial_image",
                         "trial_gpu_image": "trial_gpu_image", "work_root": "work_root"}
    # Retried steps checkpoint under work_root, keyed by the run id and their task name (and the
    # transfer runs by their base: every iteration of a loop gets the same task name).
    loop = next(task for task in tasks.values() if "parameterIterator" in task)
    assert loop["inputs"]["parameters"]["pipelinechannel--work_root"] == {"componentInputParameter": "work_root"}
    every = all_tasks(spec)
    for name in ("train-cnn", "nas", "transfer-learning"):
        inputs = every[name]["inputs"]["parameters"]
        assert inputs["work_root"] == {"componentInputParameter": "pipelinechannel--work_root" if name.startswith(
            "transfer") else "work_root"}
        assert inputs["run_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
        assert inputs["task_name"] == {"runtimeValue": {"constant": "{{$.pipeline_task_name}}"}}


def test_kind_target_uses_kfps_minio_small_pods_and_the_local_image(tmp_path):
    from pipelines import cli

    out = tmp_path / "kind.yaml"
    assert cli.main(["compile", "--target", "kind", "--profile", "smoke", "--out", str(out)]) == 0
    spec, platform = yaml.safe_load_all(out.read_text())
    assert spec["defaultPipelineRoot"] == "minio://mlpipeline/v2/artifacts"
    assert spec["root"]["inputDefinitions"]["parameters"]["work_root"]["defaultValue"] == "s3://mlpipeline/fmstudy"
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor["container"]
        assert container["image"] == "fmstudy/trainer:dev"
        assert container["resources"]["cpuRequest"] <= 0.5 and container["resources"]["memoryLimit"] <= 2.0
        assert "accelerator" not in container["resources"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio-service.kubeflow:9000"
    for config in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == "mlpipeline-minio-artifact"
        assert {k["envVar"] for k in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_image_and_namespace_are_compile_options_not_the_environment(tmp_path, monkeypatch):
    from pipelines import cli

    monkeypatch.setenv("STUDY_IMAGE_REGISTRY", "ignored.example")
    out = tmp_path / "p.yaml"
    assert cli.main(["compile", "--image", "reg.example/fm/trainer:9", "--gpu-image", "reg.example/fm/gpu:9",
                     "--namespace", "team-a", "--out", str(out)]) == 0
    spec, _ = yaml.safe_load_all(out.read_text())
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["trial_image"]["defaultValue"] == "reg.example/fm/trainer:9"
    assert params["trial_gpu_image"]["defaultValue"] == "reg.example/fm/gpu:9"
    assert params["katib_namespace"]["defaultValue"] == "team-a"
    images = {name: e["container"]["image"] for name, e in spec["deploymentSpec"]["executors"].items()}
    assert set(images.values()) == {"reg.example/fm/trainer:9", "reg.example/fm/gpu:9"}
    assert images["exec-transfer-learning"] == "reg.example/fm/gpu:9"
