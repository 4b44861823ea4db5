from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def run_sweep(stage: str, dataset: Input[Dataset], sweep: Output[Artifact], metrics: Output[Metrics],
              sweep_settings: dict, optimizer: str = "", activations: str = "", filters: str = "",
              ) -> NamedTuple("Winner", [("optimizer", str), ("activations", str), ("filters", str)]):
    """One Question 2 sweep as a Katib Experiment run by the local backend; returns the winning settings."""
    from collections import namedtuple

    from katib.sweep import run_sweep_stage

    summary = run_sweep_stage(stage, dataset.path, sweep.path, sweep_settings,
                              fixed={"optimizer": optimizer, "activations": activations, "filters": filters})
    metrics.log_metric("best_val_accuracy", summary["val_accuracy"])
    metrics.log_metric("best_index", summary["best_index"])
    metrics.log_metric("trials", len(summary["trials"]))
    sweep.metadata.update({"best": summary["best"], "condition": summary["condition"]})
    best = summary["best"]
    return namedtuple("Winner", ["optimizer", "activations", "filters"])(
        best["optimizer"], best["activations"], best["filters"])
