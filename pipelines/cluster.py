"""What the compiled (cluster) pipeline adds to each step: pods, GPUs, credentials, retries, images.

kfp.local ignores all of this, so the pipeline applies it only when compiled
for a cluster (``study compile`` / ``make pipeline``). What a sweep step's trials
need (images, namespace, store access) is fixed here too and handed to the
step, since the Experiments it creates are built inside its pod.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes

from components.core.settings import ARTIFACT_ROOT, IMAGE_UID, K8S_NAMESPACE, TRAINER_GPU_IMAGE, TRAINER_IMAGE
from katib.access import GCS_KEY_MOUNT, KFP_MINIO_SECRET, ClusterAccess

__all__ = ["GCS_KEY_MOUNT", "ClusterOptions", "apply_cluster_settings", "kind_options"]

# KFP's own MinIO (kind, most on-premises installs; KFP 2.15+ serves it from SeaweedFS under the same
# names): its default pipeline root (the kfp-launcher config's defaultPipelineRoot) and the service
# and secret the launcher uses for it (kubeflow/pipelines backend/src/v2/objectstore:
# minio-service.kubeflow:9000, mlpipeline-minio-artifact).
KFP_MINIO_ROOT = "minio://mlpipeline/v2/artifacts"
KFP_MINIO_ENDPOINT = "http://minio-service.kubeflow:9000"


@dataclass
class ClusterOptions:
    # None: workload identity gives pods their GCS access (recommended on GKE). A secret
    # name mounts that secret's key.json and points GOOGLE_APPLICATION_CREDENTIALS at it.
    gcs_key_secret: str | None = None
    # S3 / MinIO: the endpoint, and the secret holding the access and secret key.
    s3_endpoint: str | None = None
    s3_secret: str | None = None
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
    # Every step's and trial's image (default: components.core.settings, i.e. STUDY_IMAGE_REGISTRY/TAG at compile).
    image: str = TRAINER_IMAGE
    gpu_image: str = TRAINER_GPU_IMAGE
    # The defaults of pipeline parameters (a run may change them):
    namespace: str = K8S_NAMESPACE  # where the sweep steps create their Experiments
    work_root: str = f"{ARTIFACT_ROOT}/work"  # durable: checkpoints, searches, trial outputs, by run and task
    sweep_timeout_s: float = 6 * 3600.0
    sweep_cleanup: str = "delete"  # the Experiment, on timeout, failure or cancellation: delete or keep
    # Each trial pod's requests.
    trial_cpu: str = "2"
    trial_memory: str = "6Gi"

    def access(self) -> ClusterAccess:
        return ClusterAccess(gcs_key_secret=self.gcs_key_secret, s3_endpoint=self.s3_endpoint,
                             s3_secret=self.s3_secret)


def kind_options(image: str = "fmstudy/trainer:dev", **overrides) -> ClusterOptions:
    """KFP on kind: KFP's own MinIO for artifacts and work, small pods, no GPUs, the locally built
    image (tests/e2e/kind_e2e.sh builds and loads fmstudy/trainer:dev)."""
    values = dict(
        pipeline_root=KFP_MINIO_ROOT, work_root="s3://mlpipeline/fmstudy", s3_endpoint=KFP_MINIO_ENDPOINT,
        s3_secret=KFP_MINIO_SECRET, use_gpus=False, cpu="500m", memory="2G", trial_cpu="500m",
        trial_memory="2Gi", image=image, gpu_image=image, train_retries=1)
    values.update(overrides)
    return ClusterOptions(**values)


def apply_cluster_settings(task, opts: ClusterOptions, *, gpu: bool = False, retries: int = 0):
    """Pod settings for one step on the cluster."""
    task.set_cpu_request(opts.cpu).set_memory_request(opts.memory).set_memory_limit(opts.memory)
    task.set_env_variable("TF_CPP_MIN_LOG_LEVEL", "2")
    task.set_caching_options(opts.caching)
    task.container_spec.image = opts.image
    # Pod Security "restricted" wants a non-root user; kfp-kubernetes 2.17's set_security_context sets
    # the identity, and drops every capability; KFP's backend adds allowPrivilegeEscalation=false and
    # seccompProfile RuntimeDefault itself (kfp/kubernetes/security_context.py, kfp-kubernetes 2.17.3).
    kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True)
    access = opts.access()
    if access.gcs_key_secret:
        kubernetes.use_secret_as_volume(task, secret_name=access.gcs_key_secret, mount_path=GCS_KEY_MOUNT)
    for name, value in access.plain_env().items():
        task.set_env_variable(name, value)
    if access.s3_secret:
        kubernetes.use_secret_as_env(task, secret_name=access.s3_secret, secret_key_to_env={
            key: env for env, (_, key) in access.secret_env().items()})
    if retries:
        # A retried step resumes from its checkpoint under the work root (katib.access.work_uri).
        task.set_retry(num_retries=retries, backoff_duration="60s")
    if gpu and opts.use_gpus:
        task.container_spec.image = opts.gpu_image
        task.set_accelerator_type(opts.gpu_accelerator).set_accelerator_limit(opts.gpu_count)
        kubernetes.add_node_selector(task, label_key=opts.gpu_node_label, label_value=opts.gpu_node_value)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    return task
