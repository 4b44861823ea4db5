"""Compile the pipeline to KFP's IR YAML for a cluster (`make pipeline`)."""

from __future__ import annotations

from pathlib import Path

from components.profiles import load_profile
from pipelines.cluster import ClusterOptions


def compile_pipeline(out: str = "pipelines/compiled/study_pipeline.yaml", profile: str = "seed",
                     cluster: ClusterOptions | None = None) -> str:
    """The cluster pipeline: the profile's values as defaults, sweeps through Katib."""
    from kfp import compiler

    from pipelines.study_pipeline import build_pipeline, pipeline_arguments

    arguments = {**pipeline_arguments(load_profile(profile)), "sweep_backend": "katib"}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(cluster or ClusterOptions()), package_path=out,
                                pipeline_parameters=arguments)
    return out
