"""Facts defined once and imported everywhere: images, metric names, the study's figures."""

from __future__ import annotations

import os

# The trainer image runs every step on a cluster (KFP components, Katib trials,
# KerasTuner workers). Override the registry/tag at build and compile time with
# STUDY_IMAGE_REGISTRY / STUDY_IMAGE_TAG; `make images` and `make pipeline` pass them.
IMAGE_REGISTRY = os.environ.get("STUDY_IMAGE_REGISTRY", "ghcr.io/fmstudy")
IMAGE_TAG = os.environ.get("STUDY_IMAGE_TAG", "0.1.0")
TRAINER_IMAGE = f"{IMAGE_REGISTRY}/trainer:{IMAGE_TAG}"
TRAINER_GPU_IMAGE = f"{IMAGE_REGISTRY}/trainer-gpu:{IMAGE_TAG}"

# Where the cluster keeps artifacts (data, sweep trials); KFP's own pipeline_root is set at submit time.
ARTIFACT_ROOT = os.environ.get("STUDY_ARTIFACT_ROOT", "gs://fmstudy-artifacts/study")
# The Kubernetes namespace and service accounts of the study's pods (k8s/base creates them):
# fmstudy-runner may launch Katib Experiments; fmstudy-trial (trials, the AutoKeras search) has no
# API rights and no mounted token.
K8S_NAMESPACE = os.environ.get("STUDY_NAMESPACE", "fmstudy")
K8S_SERVICE_ACCOUNT = "fmstudy-runner"
K8S_TRIAL_SERVICE_ACCOUNT = "fmstudy-trial"
# The uid/gid the trainer image runs as (images/Dockerfile: USER 1000); pods pin it for Pod Security.
IMAGE_UID = 1000

# Metric names: printed by the trial runner, collected by Katib, read by the report.
OBJECTIVE_METRIC = "val_accuracy"
ADDITIONAL_METRICS = ("accuracy", "loss", "val_loss")

# Katib's StdOut metrics collector default filter (pkg/metricscollector/v1beta1/common).
KATIB_DEFAULT_METRICS_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# The study's own results, shown beside ours in every report (the transfer bases' are in their
# definitions, components/transfer/bases.py).
STUDY_RESULTS = {
    "study_cnn": {"params": 3_831_018, "test_accuracy": 0.9243},
    "autokeras_resnet": {"params": 23_608_205, "test_accuracy": 0.9210},
}
