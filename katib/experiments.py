"""Katib Experiments for the study's sweeps, built with Katib's own API models.

One builder serves both places: ``make katib`` writes the cluster manifests
(trainer image, ``gs://`` data), and the pipeline's sweep steps build the same
Experiment with local paths and hand it to the local backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubeflow_katib_api import models as katib

from components.core.config import from_mapping
from components.core.errors import UserError
from components.core.settings import (
    ADDITIONAL_METRICS,
    ARTIFACT_ROOT,
    IMAGE_UID,
    K8S_NAMESPACE,
    K8S_TRIAL_SERVICE_ACCOUNT,
    OBJECTIVE_METRIC,
    TRAINER_GPU_IMAGE,
    TRAINER_IMAGE,
)
from components.sweeps import SWEEPS, Sweep, SweepSettings, start_settings, study_fixed, trial_flag
from katib.access import ClusterAccess
from katib.backends.local.katib_api import API_VERSION, EXPERIMENT_KIND, hyperband_parallel_needed

PRIMARY_CONTAINER = "training"
TRIAL_NAME_PARAMETER = "trialName"
# Hyperband's resource: the trial's epochs, a Katib parameter of its own (resource_name).
EPOCHS_PARAMETER = "epochs"
# Where a pbt trial finds its folder: Katib's webhook mounts the Suggestion's volume, subPath
# <experiment>/<trial>, at the algorithm's suggestion_trial_dir in the primary container (Katib
# pkg/webhook/v1beta1/pod/inject_webhook.go, mutateSuggestionVolume); the trial warm-starts from it.
PBT_TRIAL_DIR = "/var/log/katib/checkpoints/"
PBT_TRUNCATION = 0.4  # the share of a generation that exploits the best (bench item 10's setting)
EXPERIMENTS_DIR = Path(__file__).with_name("experiments")

# How Katib reads each metric from a trial's observations (its metricStrategies). Katib's defaulting
# webhook gives every metric left out the objective type's strategy (Katib v0.19 pkg/apis/controller/
# experiments/v1beta1/experiment_defaults.go, setDefaultObjective): "max" for our maximize
# objective, which would show a trial's worst loss. So every metric is named here.
METRIC_STRATEGIES = {OBJECTIVE_METRIC: "max", "accuracy": "max", "loss": "min", "val_loss": "min"}


@dataclass
class ExperimentOptions:
    """Everything about an Experiment that is not the search space itself."""

    data_uri: str
    output_root: str  # each trial writes to <output_root>/<trial name>
    # Trial settings the earlier sweeps' winners fix (the hand-written CNN's before any has run).
    fixed: dict[str, str] = field(default_factory=start_settings)
    epochs: int = 10
    batch_size: int = 128
    seed: int = 1
    learning_rate: float | None = None
    bn_momentum: float = 0.99
    train_images: int | None = None  # None: all of them
    parallel_trials: int = 3
    max_failed_trials: int = 3
    max_trials: int | None = None  # None: the whole grid
    early_stopping: bool = False
    algorithm: str = "grid"  # grid, hyperband or pbt (SweepSettings.algorithm)
    pbt_population: int = 8
    hyperband_eta: int = 3
    median_stop_min_trials: int = 3
    median_stop_start_step: int = 2
    namespace: str = K8S_NAMESPACE
    gpu: bool = False
    command: tuple[str, ...] = ("study",)
    cpu: str = "2"
    memory: str = "6Gi"
    # The trial images and store access: set by the pipeline's compile options, not by the
    # environment of whichever pod builds the Experiment.
    image: str = TRAINER_IMAGE
    gpu_image: str = TRAINER_GPU_IMAGE
    access: ClusterAccess = field(default_factory=ClusterAccess)

    @classmethod
    def from_profile(cls, sweeps: dict, **overrides) -> ExperimentOptions:
        """Options from a profile's ``sweeps`` section (components/core/profiles.yaml), typed by
        :class:`SweepSettings`, then ``overrides``; both through the one converter, which also turns
        a KFP struct's floats back into the counts they were."""
        s = from_mapping(SweepSettings, sweeps, section="sweeps")
        values = {"epochs": s.epochs, "batch_size": s.batch_size, "seed": s.seed, "learning_rate": s.learning_rate,
                  "bn_momentum": s.bn_momentum, "train_images": s.train_images, "parallel_trials": s.parallel_trials,
                  "max_failed_trials": s.max_failed_trials, "early_stopping": s.early_stopping,
                  "algorithm": s.algorithm, "pbt_population": s.pbt_population, "hyperband_eta": s.hyperband_eta,
                  **overrides}
        return from_mapping(cls, values)


def experiment_name(sweep: Sweep) -> str:
    """fmstudy-<sweep>, with '-' for '_': an Experiment's name is a DNS label."""
    return f"fmstudy-{sweep.name.replace('_', '-')}"


def trial_settings(sweep: Sweep, opts: ExperimentOptions) -> dict[str, str]:
    """The trials' ``study train`` settings in flag order: what the stage holds fixed, its own setting
    (one Katib placeholder per parameter), then the profile's trial sizes that no sweep set."""
    settings = {**opts.fixed, sweep.setting: ",".join(f"${{trialParameters.{p.name}}}" for p in sweep.parameters)}
    epochs = f"${{trialParameters.{EPOCHS_PARAMETER}}}" if opts.algorithm == "hyperband" else opts.epochs
    sizes = {"epochs": epochs, "batch_size": opts.batch_size, "seed": opts.seed, "bn_momentum": opts.bn_momentum}
    if opts.learning_rate:
        sizes["learning_rate"] = opts.learning_rate
    if opts.train_images:
        sizes["train_images"] = opts.train_images
    return {**settings, **{name: str(value) for name, value in sizes.items() if name not in settings}}


def _trial_command(sweep: Sweep, opts: ExperimentOptions) -> list[str]:
    command = [*opts.command, "train", "--data", opts.data_uri,
               "--output", f"{opts.output_root.rstrip('/')}/${{trialParameters.{TRIAL_NAME_PARAMETER}}}"]
    for name, value in trial_settings(sweep, opts).items():
        command += [trial_flag(name), value]
    if opts.algorithm == "pbt":
        command += ["--warm-start", PBT_TRIAL_DIR]
    return command


def _trial_job(sweep: Sweep, opts: ExperimentOptions) -> dict:
    """The batch/v1 Job that runs one trial (Katib fills the placeholders)."""
    from kubernetes import client as k8s

    limits = {"memory": opts.memory, **({"nvidia.com/gpu": "1"} if opts.gpu else {})}
    container = k8s.V1Container(
        name=PRIMARY_CONTAINER,
        image=opts.gpu_image if opts.gpu else opts.image,
        command=_trial_command(sweep, opts),
        # A GPU shared by several trials (k8s/gpu-sharing: the device plugin's time-slicing or MPS):
        # TensorFlow would otherwise map nearly all of the GPU's memory at start, and the next trial
        # on that GPU could not start (TensorFlow's GPU guide, "Limiting GPU memory growth").
        env=[k8s.V1EnvVar(name="TF_FORCE_GPU_ALLOW_GROWTH", value="true")] if opts.gpu else None,
        resources=k8s.V1ResourceRequirements(requests={"cpu": opts.cpu, "memory": opts.memory}, limits=limits),
        security_context=k8s.V1SecurityContext(allow_privilege_escalation=False,
                                               capabilities=k8s.V1Capabilities(drop=["ALL"])),
    )
    pod = k8s.V1PodSpec(
        containers=[container],
        restart_policy="Never",
        # A trial only trains and writes artifacts: an account without API rights, and no token.
        service_account_name=K8S_TRIAL_SERVICE_ACCOUNT,
        automount_service_account_token=False,
        # Pod Security `restricted` (tests/fixtures/pod_security.py), as the image's own user.
        # A pbt trial writes into the folder Katib's pbt service made (as root) on the Suggestion's volume:
        # fsGroup gives the image's group that volume, where its kind of volume supports ownership.
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID,
            fs_group=IMAGE_UID if opts.algorithm == "pbt" else None,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        tolerations=[k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
        if opts.gpu else None,
    )
    opts.access.apply_to_pod(container, pod)
    job = k8s.V1Job(
        api_version="batch/v1", kind="Job",
        # A retried pod resumes from the trial's checkpoint, so one retry costs little.
        spec=k8s.V1JobSpec(backoff_limit=1, template=k8s.V1PodTemplateSpec(
            # Katib's metrics collector sidecar and Istio's proxy do not mix in a Job pod.
            metadata=k8s.V1ObjectMeta(annotations={"sidecar.istio.io/inject": "false"}),
            spec=pod)),
    )
    return k8s.ApiClient().sanitize_for_serialization(job)


def _algorithm(opts: ExperimentOptions) -> katib.V1beta1AlgorithmSpec:
    """Katib's algorithm for the sweep, with the settings the study gives hyperband and pbt."""
    settings = {
        "grid": {},
        # A trial's budget is 1 to the profile's epochs; Katib's service checks parallelTrialCount against it.
        "hyperband": {"resource_name": EPOCHS_PARAMETER, "r_l": str(opts.epochs), "eta": str(opts.hyperband_eta)},
        "pbt": {"suggestion_trial_dir": PBT_TRIAL_DIR, "n_population": str(opts.pbt_population),
                "truncation_threshold": str(PBT_TRUNCATION)},
    }[opts.algorithm]
    return katib.V1beta1AlgorithmSpec(
        algorithm_name=opts.algorithm,
        algorithm_settings=[katib.V1beta1AlgorithmSetting(name=k, value=v) for k, v in settings.items()] or None)


def build_experiment(sweep: Sweep, opts: ExperimentOptions) -> dict:
    """The Experiment as a plain dict (what YAML, the validator and the backends take)."""
    max_trials = opts.max_trials or sweep.grid_size
    parallel = min(opts.parallel_trials, max_trials)
    needed = hyperband_parallel_needed(opts.epochs, opts.hyperband_eta)
    if opts.algorithm == "hyperband" and parallel < needed:
        raise UserError(f"sweep {sweep.name}: hyperband with epochs {opts.epochs} and eta {opts.hyperband_eta} starts "
                        f"{needed} trials at once (Katib's rule), but {parallel} may run;"
                        " raise sweeps.parallel_trials (sweeps.local_parallel_trials on this machine) or"
                        " sweeps.hyperband_eta, or lower sweeps.epochs")
    trial_parameters = [
        katib.V1beta1TrialParameterSpec(name=p.name, reference=p.name, description=f"{sweep.setting}: {p.name}")
        for p in sweep.parameters
    ] + [katib.V1beta1TrialParameterSpec(name=TRIAL_NAME_PARAMETER, reference="${trialSpec.Name}",
                                         description="the trial's name: its output folder")]
    parameters = [katib.V1beta1ParameterSpec(name=p.name, parameter_type=p.type,
                                             feasible_space=katib.V1beta1FeasibleSpace(list=list(p.values)))
                  for p in sweep.parameters]
    if opts.algorithm == "hyperband":
        parameters.append(katib.V1beta1ParameterSpec(name=EPOCHS_PARAMETER, parameter_type="int",
                                                     feasible_space=katib.V1beta1FeasibleSpace(
                                                         min="1", max=str(opts.epochs))))
        trial_parameters.append(katib.V1beta1TrialParameterSpec(
            name=EPOCHS_PARAMETER, reference=EPOCHS_PARAMETER, description="hyperband's resource: the trial's epochs"))
    spec = katib.V1beta1ExperimentSpec(
        objective=katib.V1beta1ObjectiveSpec(
            type="maximize", objective_metric_name=OBJECTIVE_METRIC, additional_metric_names=list(ADDITIONAL_METRICS),
            metric_strategies=[katib.V1beta1MetricStrategy(name=name, value=METRIC_STRATEGIES[name])
                               for name in (OBJECTIVE_METRIC, *ADDITIONAL_METRICS)]),
        algorithm=_algorithm(opts),
        parallel_trial_count=parallel,
        max_trial_count=max_trials,
        max_failed_trial_count=min(opts.max_failed_trials, max_trials),
        parameters=parameters,
        metrics_collector_spec=katib.V1beta1MetricsCollectorSpec(collector=katib.V1beta1CollectorSpec(kind="StdOut")),
        trial_template=katib.V1beta1TrialTemplate(primary_container_name=PRIMARY_CONTAINER,
                                                  trial_parameters=trial_parameters,
                                                  trial_spec=_trial_job(sweep, opts)),
    )
    if opts.algorithm == "pbt":
        # Katib makes the Suggestion's volume, which the trials' folders live on, only for FromVolume.
        spec.resume_policy = "FromVolume"
    if opts.early_stopping:
        spec.early_stopping = katib.V1beta1EarlyStoppingSpec(algorithm_name="medianstop", algorithm_settings=[
            katib.V1beta1EarlyStoppingSetting(name="min_trials_required", value=str(opts.median_stop_min_trials)),
            katib.V1beta1EarlyStoppingSetting(name="start_step", value=str(opts.median_stop_start_step)),
        ])
    experiment = katib.V1beta1Experiment(
        api_version=API_VERSION, kind=EXPERIMENT_KIND,
        metadata=katib.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=experiment_name(sweep), namespace=opts.namespace,
            labels={"app.kubernetes.io/part-of": "fmstudy", "fmstudy/sweep": sweep.name}),
        spec=spec,
    )
    return experiment.to_dict()


def to_yaml(experiment: dict) -> str:
    return yaml.safe_dump(experiment, sort_keys=False, width=120)


def cluster_experiments(profile: dict, gpu: bool = False) -> dict[str, dict]:
    """The checked-in manifests, one per sweep: cluster paths, the study's winners as the fixed settings.

    On a cluster the pipeline builds the later stages again with the winners it found;
    these files are for running one stage by hand (`make katib-apply`).
    """
    data_uri = f"{ARTIFACT_ROOT}/data/fashion-mnist"
    out = {}
    for name, sweep in SWEEPS.items():
        opts = ExperimentOptions.from_profile(
            profile["sweeps"], data_uri=data_uri, output_root=f"{ARTIFACT_ROOT}/sweeps/{name}",
            fixed=study_fixed(name), gpu=gpu, max_trials=(profile["sweeps"]["max_trials"] or {}).get(name))
        out[name] = build_experiment(sweep, opts)
    return out


def write_cluster_experiments(profile: dict, root: Path = EXPERIMENTS_DIR) -> list[Path]:
    written = []
    for gpu, folder in ((False, root), (True, root / "gpu")):
        folder.mkdir(parents=True, exist_ok=True)
        for name, experiment in cluster_experiments(profile, gpu=gpu).items():
            path = folder / f"{name}.yaml"
            path.write_text(to_yaml(experiment))
            written.append(path)
    return written
