"""How a pod on the cluster reaches the artifact store: one description for KFP steps and trial Jobs.

A sweep step creates Experiments whose trials run in pods of their own, so every
credential a step pod carries must also be written into the trial template:
the compiled pipeline hands this description to the step as a constant, and
the step builds the trial template from it (nothing is read from the step
pod's own environment, which the trials never see).

- GCS through workload identity: nothing to add (the service account is bound).
- GCS through a key secret: the secret's ``key.json`` mounted, and
  ``GOOGLE_APPLICATION_CREDENTIALS`` pointing at it.
- S3 / MinIO (KFP on kind keeps its artifacts in MinIO): the endpoint in
  ``AWS_ENDPOINT_URL_S3`` and the keys, from a secret, in ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY``: boto3's own settings, which components.core.storage's s3:// reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from components.core.errors import UserError

GCS_KEY_MOUNT = "/var/secrets/gcs"
GCS_KEY_FILE = "key.json"
GCS_KEY_VOLUME = "gcs-key"
S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
S3_KEY_ENVS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# KFP's own MinIO secret (backend/src/v2/objectstore: mlpipeline-minio-artifact, keys accesskey/secretkey).
KFP_MINIO_SECRET = "mlpipeline-minio-artifact"
KFP_MINIO_KEYS = ("accesskey", "secretkey")


@dataclass(frozen=True)
class ClusterAccess:
    gcs_key_secret: str | None = None  # None: workload identity
    s3_endpoint: str | None = None  # e.g. http://minio-service.kubeflow:9000
    s3_secret: str | None = None  # the secret holding the S3 access and secret key
    s3_keys: tuple[str, str] = KFP_MINIO_KEYS  # the secret's keys for them

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ClusterAccess:
        """From the step's struct input; unknown keys are refused (a newer pipeline, an older image)."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"cluster access settings: unknown {', '.join(unknown)}; "
                            f"expected {', '.join(sorted(known))}")
        if "s3_keys" in values:
            values["s3_keys"] = tuple(values["s3_keys"])
        return cls(**{k: v if k == "s3_keys" else (v or None) for k, v in values.items()})

    def as_dict(self) -> dict[str, Any]:
        """A KFP struct value: no nulls, lists for tuples."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v is not None}

    @property
    def gcs_key_path(self) -> str | None:
        return f"{GCS_KEY_MOUNT}/{GCS_KEY_FILE}" if self.gcs_key_secret else None

    def plain_env(self) -> dict[str, str]:
        env = {}
        if self.gcs_key_secret:
            env["GOOGLE_APPLICATION_CREDENTIALS"] = self.gcs_key_path
        if self.s3_endpoint:
            env[S3_ENDPOINT_ENV] = self.s3_endpoint
        return env

    def secret_env(self) -> dict[str, tuple[str, str]]:
        """Environment variables read from a secret: {name: (secret, key)}."""
        if not self.s3_secret:
            return {}
        return {env: (self.s3_secret, key) for env, key in zip(S3_KEY_ENVS, self.s3_keys)}

    def apply_to_pod(self, container, pod) -> None:
        """Add this access to a trial's kubernetes V1Container and V1PodSpec (in place)."""
        from kubernetes import client as k8s

        env = [k8s.V1EnvVar(name=k, value=v) for k, v in self.plain_env().items()]
        env += [k8s.V1EnvVar(name=k, value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name=secret, key=key))) for k, (secret, key) in
            self.secret_env().items()]
        if env:
            container.env = [*(container.env or []), *env]
        if self.gcs_key_secret:
            pod.volumes = [*(pod.volumes or []), k8s.V1Volume(
                name=GCS_KEY_VOLUME, secret=k8s.V1SecretVolumeSource(secret_name=self.gcs_key_secret))]
            container.volume_mounts = [*(container.volume_mounts or []), k8s.V1VolumeMount(
                name=GCS_KEY_VOLUME, mount_path=GCS_KEY_MOUNT, read_only=True)]


def durable_uri(uri: str) -> str:
    """An artifact URI as trials and this project's storage can open it.

    KFP names its MinIO artifacts ``minio://bucket/key``; MinIO speaks S3, so the same
    object is ``s3://bucket/key`` at the S3 endpoint (the launcher maps both schemes to
    one bucket: backend/src/v2/component/launcher_v2.go, LocalPathForURI).
    """
    return "s3://" + uri[len("minio://"):] if uri.startswith("minio://") else uri


def work_uri(work_root: str, run_id: str, task_name: str, *parts: str) -> str | None:
    """A durable location for one task of one pipeline run (checkpoints, a search, trial outputs).

    KFP retries a failed task as a new pod whose artifact folders start empty (on open-source
    KFP they are uploaded only when the task succeeds), so work that must survive a retry goes
    here instead: the same run and task find it again. None without a work root (kfp.local,
    where the artifact folders themselves persist).
    """
    if not (work_root and run_id and task_name):
        return None
    from components.core import storage

    return storage.join(work_root, run_id, task_name, *parts)
