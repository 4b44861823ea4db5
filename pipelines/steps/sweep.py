from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def run_sweep(stage: str, dataset: Input[Dataset], sweep: Output[Artifact], metrics: Output[Metrics],
              sweep_settings: dict, fixed: Optional[dict] = None,  # noqa: UP045 - KFP reads typing.Optional
              backend: str = "local", gpu: bool = False, timeout_s: float = 21600.0,
              katib_namespace: str = "", trial_image: str = "", trial_gpu_image: str = "", work_root: str = "",
              run_id: str = "", cluster_access: Optional[dict] = None,  # noqa: UP045 - KFP reads typing.Optional
              sweep_cleanup: str = "delete",
              trial_cpu: str = "", trial_memory: str = "",
              ) -> NamedTuple("Outputs", [("winner", dict)]):
    """One Question 2 sweep as a Katib Experiment; returns its winner: the settings of its best trial.

    fixed: the settings the stage holds fixed, the winner of the sweep before it (components/sweeps.py);
    None: the hand-written CNN's.

    backend "local": the local Katib backend runs the trials in this step's process tree.
    backend "katib": the Katib controller runs them as Jobs, in katib_namespace, on trial_image,
    with cluster_access's credentials; they read the dataset and write their outputs by URI
    (under work_root/run_id when given), since they cannot see this pod's files. The
    Experiment is named after run_id, so pipeline runs never share one.
    """
    from collections import namedtuple

    from katib.sweep import ClusterSweep, launch_sweep_stage, run_sweep_stage

    if backend == "katib":
        given = {"katib_namespace": katib_namespace, "trial_image": trial_image, "trial_gpu_image": trial_gpu_image,
                 "work_root": work_root, "run_id": run_id, "cluster_access": cluster_access,
                 "sweep_cleanup": sweep_cleanup, "trial_cpu": trial_cpu, "trial_memory": trial_memory}
        cluster = ClusterSweep(**{k: v for k, v in given.items() if v})  # unset: ClusterSweep's default
        summary = launch_sweep_stage(stage, dataset.uri, sweep.uri, sweep_settings, fixed, gpu=gpu,
                                     timeout_s=timeout_s, summary_dir=sweep.path, cluster=cluster)
    else:
        summary = run_sweep_stage(stage, dataset.path, sweep.path, sweep_settings, fixed)
    metrics.log_metric("best_val_accuracy", summary["val_accuracy"])
    metrics.log_metric("best_index", summary["best_index"])
    metrics.log_metric("trials", len(summary["trials"]))
    sweep.metadata.update({"best": summary["best"], "condition": summary["condition"]})
    return namedtuple("Outputs", ["winner"])(summary["best"])
