"""Question 3's KFP components: the target image folder, and one transfer-learning run per base.

The pipeline runs ``transfer_learning`` in a ``dsl.ParallelFor`` over the base definitions
(``components.transfer.bases``), and the report collects the runs (``dsl.Collected``).

On the cluster the pipeline gives each transfer run a GPU on the GPU node pool
(``pipelines.cluster.apply_cluster_settings(task, options, gpu=True)``: the GPU
image, nvidia.com/gpu, node selector and toleration); kfp.local runs them on this CPU.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def prepare_transfer_images(dataset: Input[Dataset], images: Output[Dataset], transfer_settings: dict):
    """The target task: Fashion-MNIST classes 5-9 (``transfer.target``) as an image folder of PNG files."""
    from components.transfer.data import TARGET_CLASSES, write_image_folder

    target = transfer_settings.get("target") or {}
    record = write_image_folder(dataset.path, images.path, classes=target.get("classes") or TARGET_CLASSES,
                                images_per_class=target.get("images_per_class"), seed=int(target.get("seed", 42)))
    images.metadata.update({"images": record["images"], "classes": list(record["class_counts"])})


@dsl.component(**COMPONENT_DEFAULTS)
def transfer_learning(base: str, images: Input[Dataset], source: Input[Dataset], transfer_settings: dict,
                      run: Output[Model], metrics: Output[Metrics], curves: Output[Artifact], view: Output[HTML],
                      work_root: str = "", run_id: str = "", task_name: str = ""):
    """Frozen base, then fine-tuning: the run folder (both .keras models), metrics, the curves PNG.

    With work_root, run_id and task_name the run folder is work_root/run_id/task_name/base/run, where
    its checkpoints survive a retry of this task; the finished folder is copied into the artifact. The
    base is part of the path because the pipeline runs the bases as iterations of one loop, and KFP's
    driver gives every iteration the same task name (the loop's task, not the iteration).
    """
    import shutil

    from components.core.keras_load import load_keras

    load_keras()  # without the optional packages a training process never uses: a faster start
    from components.core import storage
    from components.report.render import render_html
    from components.report.transfer_section import transfer_section
    from components.transfer.settings import settings_from_profile
    from components.transfer.training import run_transfer
    from katib.access import work_uri

    durable = work_uri(work_root, run_id, task_name, base, "run")
    result = run_transfer(settings_from_profile(transfer_settings, base), images.path, durable or run.path,
                          source_data_uri=source.path)
    if durable:
        storage.download_dir(durable, run.path)
    for name in ("val_accuracy_frozen", "val_accuracy_finetuned", "test_accuracy_frozen", "test_accuracy"):
        if result[name] is not None:
            metrics.log_metric(name, result[name])
    metrics.log_metric("trainable_params_frozen", result["params"]["trainable_frozen"])
    if result["params"]["trainable_fine_tune"] is not None:
        metrics.log_metric("trainable_params_fine_tune", result["params"]["trainable_fine_tune"])
    shutil.copyfile(f"{run.path}/curves.png", curves.path)
    curves.metadata.update({"mime_type": "image/png", "base": base})
    with open(view.path, "w") as f:
        f.write(render_html(f"Transfer learning: {result['constructor']}", [transfer_section({base: run.path})]))
    run.metadata.update({"base": base, "weights": result["weights"]["kind"],
                         "params": result["params"]["total"], "device": result["device"]})
