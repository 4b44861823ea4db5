from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def run_sweep(stage: str, dataset: Input[Dataset], sweep: Output[Artifact], metrics: Output[Metrics],
              sweep_settings: dict, optimizer: str = "", activations: str = "", filters: str = "",
              backend: str = "local", gpu: bool = False, timeout_s: float = 21600.0,
              ) -> NamedTuple("Winner", [("optimizer", str), ("activations", str), ("filters", str)]):
    """One Question 2 sweep as a Katib Experiment; returns the winning settings.

    backend "local": the local Katib backend runs the trials in this step's process tree.
    backend "katib": the Katib controller runs them as Jobs; trials read the dataset and
    write their outputs by gs:// URI, since they cannot see this pod's files.
    """
    from collections import namedtuple

    from katib.sweep import launch_sweep_stage, run_sweep_stage

    fixed = {"optimizer": optimizer, "activations": activations, "filters": filters}
    if backend == "katib":
        summary = launch_sweep_stage(stage, dataset.uri, sweep.uri, sweep_settings, fixed, gpu=gpu,
                                     timeout_s=timeout_s, summary_dir=sweep.path)
    else:
        summary = run_sweep_stage(stage, dataset.path, sweep.path, sweep_settings, fixed)
    metrics.log_metric("best_val_accuracy", summary["val_accuracy"])
    metrics.log_metric("best_index", summary["best_index"])
    metrics.log_metric("trials", len(summary["trials"]))
    sweep.metadata.update({"best": summary["best"], "condition": summary["condition"]})
    best = summary["best"]
    return namedtuple("Winner", ["optimizer", "activations", "filters"])(
        best["optimizer"], best["activations"], best["filters"])
