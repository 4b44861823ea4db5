"""Compile the pipeline to KFP's IR YAML for a cluster (`make pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from components.profile_check import load_profile

if TYPE_CHECKING:  # `study` builds its parser from add_arguments: kfp loads only when compiling
    from pipelines.cluster import ClusterOptions


def compile_pipeline(out: str = "pipelines/compiled/study_pipeline.yaml", profile: str = "study",
                     cluster: ClusterOptions | None = None) -> str:
    """The cluster pipeline: the profile's values as defaults, sweeps through Katib."""
    from kfp import compiler

    from pipelines.cluster import ClusterOptions
    from pipelines.study_pipeline import build_pipeline, pipeline_arguments

    cluster = cluster or ClusterOptions()
    arguments = {**pipeline_arguments(load_profile(profile)), **cluster_arguments(cluster)}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(cluster), package_path=out, pipeline_parameters=arguments)
    return out


def cluster_arguments(cluster: ClusterOptions) -> dict:
    """The cluster's defaults of the pipeline parameters a run may change (sweeps through Katib)."""
    return {"sweep_backend": "katib", "work_root": cluster.work_root, "katib_namespace": cluster.namespace,
            "trial_image": cluster.image, "trial_gpu_image": cluster.gpu_image,
            "sweep_timeout_s": float(cluster.sweep_timeout_s), "sweep_cleanup": cluster.sweep_cleanup}


# ---------------------------------------------------------------- `study compile` options

TARGETS = ("gke", "kind")


def add_arguments(parser) -> None:
    """`study compile`'s options (pipelines/cli.py builds its parser from this)."""
    parser.add_argument("--out", default="pipelines/compiled/study_pipeline.yaml", help="the compiled pipeline's path")
    parser.add_argument("--profile", default="study", help="profile whose values become the pipeline's defaults")
    parser.add_argument("--target", choices=TARGETS, default="gke",
                        help="gke: gs:// roots, GPU node pool (default); kind: KFP's own MinIO (s3://), small "
                             "pods, no GPUs, the fmstudy/trainer:dev image")
    parser.add_argument("--pipeline-root", default=None, help="root for KFP's artifacts (gs://, or minio:// on kind)")
    parser.add_argument("--work-root", default=None,
                        help="durable gs:// or s3:// root for checkpoints, searches and trial outputs, keyed by "
                             "run and task (the work_root parameter's default)")
    parser.add_argument("--image", default=None, help="every step's and trial's image (default: settings)")
    parser.add_argument("--gpu-image", default=None, help="the GPU steps' and trials' image (default: settings)")
    parser.add_argument("--namespace", default=None,
                        help="where the sweep steps create Katib Experiments (the katib_namespace parameter's "
                             "default; multi-user Kubeflow: the profile namespace)")
    parser.add_argument("--gcs-key-secret", default=None,
                        help="Kubernetes secret holding key.json for GCS, mounted into steps and trials "
                             "(default: workload identity)")
    parser.add_argument("--s3-endpoint", default=None, help="S3/MinIO endpoint URL for steps and trials")
    parser.add_argument("--s3-secret", default=None,
                        help="secret with the S3 keys (keys accesskey, secretkey) for steps and trials")
    parser.add_argument("--gpu-node-label", default=None,
                        help="node label key of the GPU node pool (default: the cloud's own, see --gpu-node-value)")
    parser.add_argument("--gpu-node-value", default=None, help="the GPU node pool's label value")
    parser.add_argument("--sweep-timeout", type=float, default=None, metavar="SECONDS",
                        help="the sweep_timeout_s parameter's default (6 h)")
    parser.add_argument("--sweep-cleanup", choices=("delete", "keep"), default=None,
                        help="what a sweep does with its Experiment on timeout, failure or cancellation "
                             "(the sweep_cleanup parameter's default: delete)")
    parser.add_argument("--no-cache", action="store_true", help="turn off KFP's execution caching")
    parser.add_argument("--no-gpu", action="store_true", help="no GPU requests: the transfer steps run as CPU pods")


def options_from_args(args) -> ClusterOptions:
    from pipelines.cluster import ClusterOptions, kind_options

    given = {"pipeline_root": args.pipeline_root, "work_root": args.work_root, "image": args.image,
             "gpu_image": args.gpu_image, "namespace": args.namespace, "gcs_key_secret": args.gcs_key_secret,
             "s3_endpoint": args.s3_endpoint, "s3_secret": args.s3_secret, "gpu_node_label": args.gpu_node_label,
             "gpu_node_value": args.gpu_node_value, "sweep_timeout_s": args.sweep_timeout,
             "sweep_cleanup": args.sweep_cleanup}
    given = {k: v for k, v in given.items() if v is not None}
    if args.image and not args.gpu_image and (args.target == "kind" or args.no_gpu):
        given["gpu_image"] = args.image
    if args.no_cache:
        given["caching"] = False
    if args.no_gpu:
        given["use_gpus"] = False
    return kind_options(**given) if args.target == "kind" else ClusterOptions(**given)


def run_from_args(args) -> None:
    print(compile_pipeline(args.out, profile=args.profile, cluster=options_from_args(args)))
