"""The study as one KFP v2 pipeline: the same function runs under kfp.local and compiles for a cluster."""

# No `from __future__ import annotations` here: KFP reads the real annotation objects.
from kfp import dsl

from components.profile_check import load_profile
from components.sweeps import SWEEPS
from components.transfer.bases import BASES as TRANSFER_BASES
from pipelines.cluster import ClusterOptions, apply_cluster_settings
from pipelines.steps.data import prepare_data
from pipelines.steps.evaluate import evaluate_model
from pipelines.steps.nas import nas
from pipelines.steps.report import build_report
from pipelines.steps.sweep import run_sweep
from pipelines.steps.train import train_cnn
from pipelines.steps.transfer import prepare_transfer_images, transfer_learning

PIPELINE_NAME = "fashion-mnist-study"


def without_none(value):
    """KFP structs cannot hold null: drop unset (None) settings, which readers treat as defaults."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


def pipeline_arguments(profile: dict) -> dict:
    """A profile (components/core/profiles.yaml) as the pipeline's parameters."""
    data, train = profile["data"], profile["train"]
    return {
        "data_source": data.get("source") or "",
        "val_fraction": float(data["val_fraction"]),
        "train_size": int(data["train_size"] or 0),
        "test_size": int(data["test_size"] or 0),
        "data_seed": int(data["seed"]),
        "optimizer": str(train["optimizer"]),
        "learning_rate": float(train["learning_rate"] or 0.0),
        "activations": ",".join(train.get("activations") or ("relu",) * 4),
        "filters": ",".join(str(f) for f in (train.get("filters") or (32, 32, 64, 64))),
        "epochs": int(train["epochs"]),
        "batch_size": int(train["batch_size"]),
        "train_seed": int(train["seed"]),
        "bn_momentum": float(train["bn_momentum"]),
        "train_images": int(train.get("train_images") or 0),
        "sweep_settings": without_none(profile["sweeps"]),
        "nas_settings": without_none(profile["nas"]),
        "transfer_settings": without_none(profile["transfer"]),
    }


# The pipeline's parameter defaults are the study profile's values (profiles.yaml is their one
# source); `study run` and `study compile` pass a profile's values as arguments anyway.
STUDY = pipeline_arguments(load_profile("study"))


def build_pipeline(cluster: ClusterOptions | None = None):
    """The study pipeline. ``cluster=None`` is the plain pipeline kfp.local runs; with
    ClusterOptions the same steps get pod, GPU, credential and retry settings."""

    def on_cluster(task, *, gpu: bool = False, retries: int = 0):
        return apply_cluster_settings(task, cluster, gpu=gpu, retries=retries) if cluster else task

    # Run and task ids, as whole input values: the only form KFP's driver resolves them in
    # (backend/src/v2/driver/resolve.go; tests/unit/test_pipeline_placeholders.py).
    run_ids = {"run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER, "task_name": dsl.PIPELINE_TASK_NAME_PLACEHOLDER}
    # What the Experiments' trials need besides the pipeline parameters: the store access the
    # step pods get (compile options), fixed into the sweep steps.
    trial_settings = ({"cluster_access": cluster.access().as_dict(), "trial_cpu": cluster.trial_cpu,
                       "trial_memory": cluster.trial_memory} if cluster else {})

    @dsl.pipeline(name=PIPELINE_NAME, pipeline_root=cluster.pipeline_root if cluster else None,
                  description="Fashion-MNIST study: data, the hand-written CNN, the Katib sweeps, the report")
    def study_pipeline(
        data_source: str = STUDY["data_source"],
        val_fraction: float = STUDY["val_fraction"],
        train_size: int = STUDY["train_size"],
        test_size: int = STUDY["test_size"],
        data_seed: int = STUDY["data_seed"],
        optimizer: str = STUDY["optimizer"],
        learning_rate: float = STUDY["learning_rate"],
        activations: str = STUDY["activations"],
        filters: str = STUDY["filters"],
        epochs: int = STUDY["epochs"],
        batch_size: int = STUDY["batch_size"],
        train_seed: int = STUDY["train_seed"],
        bn_momentum: float = STUDY["bn_momentum"],
        train_images: int = STUDY["train_images"],
        sweep_settings: dict = STUDY["sweep_settings"],
        sweep_backend: str = "local",
        nas_settings: dict = STUDY["nas_settings"],
        transfer_settings: dict = STUDY["transfer_settings"],
        work_root: str = "",
        katib_namespace: str = "",
        trial_image: str = "",
        trial_gpu_image: str = "",
        sweep_timeout_s: float = 21600.0,
        sweep_cleanup: str = "delete",
    ) -> dsl.HTML:
        data = prepare_data(source=data_source, val_fraction=val_fraction, train_size=train_size,
                            test_size=test_size, seed=data_seed).set_display_name("data")
        on_cluster(data)
        train = train_cnn(dataset=data.outputs["dataset"], optimizer=optimizer, learning_rate=learning_rate,
                          activations=activations, filters=filters, epochs=epochs, batch_size=batch_size,
                          seed=train_seed, bn_momentum=bn_momentum, train_images=train_images, work_root=work_root,
                          **run_ids).set_display_name("train hand-written CNN")
        on_cluster(train, retries=cluster.train_retries if cluster else 0)
        evaluation = evaluate_model(dataset=data.outputs["dataset"],
                                    model=train.outputs["model"]).set_display_name("evaluate")
        on_cluster(evaluation)
        # Question 1B: the AutoKeras search. Its KerasTuner project lives under the work root, keyed
        # by run and task, so a retried step resumes the search instead of starting over.
        search = nas(dataset=data.outputs["dataset"], nas_settings=nas_settings, work_root=work_root, **run_ids)
        search.set_display_name("nas: AutoKeras search")
        on_cluster(search, retries=cluster.train_retries if cluster else 0)
        # Question 2: the chained sweeps (components/sweeps.py), each holding fixed the winner of the one before.
        sweep_inputs = dict(dataset=data.outputs["dataset"], sweep_settings=sweep_settings, backend=sweep_backend,
                            timeout_s=sweep_timeout_s, katib_namespace=katib_namespace, trial_image=trial_image,
                            trial_gpu_image=trial_gpu_image, work_root=work_root, run_id=run_ids["run_id"],
                            sweep_cleanup=sweep_cleanup, **trial_settings)
        sweeps = {}
        for definition in SWEEPS.values():
            fed = {"fixed": sweeps[definition.after].outputs["winner"]} if definition.after else {}
            sweep = run_sweep(stage=definition.name, **fed, **sweep_inputs).set_display_name(definition.label)
            if not fed:  # Question 2 starts once Question 1A has trained, as before
                sweep.after(train)
            # On the cluster a sweep step only launches and watches Katib: a small pod.
            sweeps[definition.name] = on_cluster(sweep)
            if cluster:
                sweep.set_cpu_request("500m").set_memory_request("1G").set_memory_limit("2G")
        # Question 3: the target task as an image folder, then one transfer run per base: the
        # iterations of one loop. On the cluster each is its own pod with a GPU; kfp.local runs them
        # at once, as two processes sharing the CPU (its other steps run one after the other).
        images = prepare_transfer_images(dataset=data.outputs["dataset"], transfer_settings=transfer_settings)
        on_cluster(images.set_display_name("transfer: target image folder"))
        with dsl.ParallelFor(items=list(TRANSFER_BASES), name="transfer-bases") as base:
            transfer = transfer_learning(base=base, images=images.outputs["images"], source=data.outputs["dataset"],
                                         transfer_settings=transfer_settings, work_root=work_root,
                                         **run_ids).set_display_name("transfer: one base")
            on_cluster(transfer, gpu=True, retries=cluster.train_retries if cluster else 0)
        report = build_report(dataset=data.outputs["dataset"], model=train.outputs["model"],
                              evaluation=evaluation.outputs["evaluation"], **reported_sweeps(sweeps),
                              nas=search.outputs["model"], transfers=dsl.Collected(transfer.outputs["run"]))
        on_cluster(report.set_display_name("report"))
        return report.outputs["html"]

    return study_pipeline


def reported_sweeps(sweeps: dict) -> dict:
    """The sweeps' artifacts as the report step's inputs: <sweep name>_sweep, for each sweep it takes
    (a sweep the report step has no input for runs, but is not reported)."""
    inputs = build_report.component_spec.inputs
    return {f"{name}_sweep": task.outputs["sweep"] for name, task in sweeps.items() if f"{name}_sweep" in inputs}


study_pipeline = build_pipeline()
