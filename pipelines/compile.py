"""Compile the pipeline to KFP's IR YAML (what a cluster runs; `make pipeline`)."""

from __future__ import annotations

from pathlib import Path

from components.profiles import load_profile


def compile_pipeline(out: str = "pipelines/compiled/study_pipeline.yaml", profile: str = "seed") -> str:
    from kfp import compiler

    from pipelines.study_pipeline import pipeline_arguments, study_pipeline

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(study_pipeline, package_path=out,
                                pipeline_parameters=pipeline_arguments(load_profile(profile)))
    return out
