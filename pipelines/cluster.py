"""What the compiled (cluster) pipeline adds to each step: pods, GPUs, credentials, retries.

kfp.local ignores all of this, so the pipeline applies it only when compiled
for a cluster (``study compile`` / ``make pipeline``).
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes

from components.settings import ARTIFACT_ROOT, TRAINER_GPU_IMAGE

GCS_KEY_MOUNT = "/var/secrets/gcs"


@dataclass
class ClusterOptions:
    # None: workload identity gives pods their GCS access (recommended on GKE). A secret
    # name mounts that secret's key.json and points GOOGLE_APPLICATION_CREDENTIALS at it.
    gcs_key_secret: str | None = None
    # The GPU node pool: node label and value selecting it, and the accelerator type KFP asks for.
    gpu_node_label: str = "cloud.google.com/gke-accelerator"
    gpu_node_value: str = "nvidia-tesla-t4"
    gpu_accelerator: str = "nvidia.com/gpu"
    gpu_count: int = 1
    use_gpus: bool = True  # False (kind, CPU-only clusters): the GPU steps run as CPU pods
    train_retries: int = 2
    cpu: str = "2"
    memory: str = "8G"
    caching: bool = True  # KFP's execution caching of steps whose inputs did not change
    pipeline_root: str = f"{ARTIFACT_ROOT}/kfp"


def apply_cluster_settings(task, opts: ClusterOptions, *, gpu: bool = False, retries: int = 0):
    """Pod settings for one step on the cluster."""
    task.set_cpu_request(opts.cpu).set_memory_request(opts.memory).set_memory_limit(opts.memory)
    task.set_env_variable("TF_CPP_MIN_LOG_LEVEL", "2")
    task.set_caching_options(opts.caching)
    if opts.gcs_key_secret:
        kubernetes.use_secret_as_volume(task, secret_name=opts.gcs_key_secret, mount_path=GCS_KEY_MOUNT)
        task.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", f"{GCS_KEY_MOUNT}/key.json")
    if retries:
        # A retried training step resumes from its checkpoint (components/train.py).
        task.set_retry(num_retries=retries, backoff_duration="60s")
    if gpu and opts.use_gpus:
        task.container_spec.image = TRAINER_GPU_IMAGE
        task.set_accelerator_type(opts.gpu_accelerator).set_accelerator_limit(opts.gpu_count)
        kubernetes.add_node_selector(task, label_key=opts.gpu_node_label, label_value=opts.gpu_node_value)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    return task
