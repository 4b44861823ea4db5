from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def nas(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics], nas_settings: dict,
        work_root: str = "", run_id: str = "", task_name: str = ""):
    """Question 1B: the AutoKeras search; `model` holds the best model, its summary and the trial table.

    With work_root, run_id and task_name the KerasTuner project lives in
    work_root/run_id/task_name/search (a durable gs:// or s3:// URI on a cluster), so a retried
    task resumes its search; without them it lives inside the model artifact.
    """
    from components.nas.config import NasConfig
    from components.nas.search import run_nas
    from katib.access import work_uri

    search_uri = work_uri(work_root, run_id, task_name, "search")
    result = run_nas(NasConfig.from_dict(nas_settings), dataset.path, model.path, search_uri=search_uri)
    metrics.log_metric("test_accuracy", result["test_accuracy"])
    metrics.log_metric("best_val_accuracy", result["best_trial"]["val_accuracy"])
    metrics.log_metric("params", result["params"]["total"])
    metrics.log_metric("trials", len(result["trials"]))
    metrics.log_metric("search_seconds", result["search_seconds"])
    model.metadata.update({"params": result["params"]["total"], "best_trial": result["best_trial"]["trial_id"],
                           **{k: v for k, v in result["config"].items() if v is not None}})
