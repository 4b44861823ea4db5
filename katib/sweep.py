"""One stage of Question 2: build its Experiment, validate, run it on a sweep backend, summarise.

:func:`run_stage` is the one path: the Experiment goes to a
:class:`~katib.backends.base.SweepBackend` (the local Katib backend, or the Katib
controller on a cluster) and its :class:`~katib.backends.base.Outcome` becomes the
summary. The summary (``summary.json``, written last) is what the next stage and the
report read: the winning settings, their grid index in the study's numbering,
and every trial's state and objective, failed trials included.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from components.core import storage
from components.core.config import from_mapping
from components.core.errors import UserError
from components.core.settings import K8S_NAMESPACE, OBJECTIVE_METRIC, TRAINER_GPU_IMAGE, TRAINER_IMAGE
from components.sweeps import SweepSettings, get_sweep, start_settings, swept_settings
from katib.access import ClusterAccess, durable_uri
from katib.backends.base import SweepBackend, TrialRow
from katib.experiments import ExperimentOptions, build_experiment, experiment_name, to_yaml
from katib.validate import check_experiment

SUMMARY_FILE = "summary.json"
EXPERIMENT_FILE = "experiment.yaml"
PACK_LOG = "pack-server.log"  # the pack server's log, beside the stage's trials (sweeps.local_pack_slots)


# Katib's validating webhook refuses longer Experiment names, because the Suggestion's Service is
# named <experiment>-<algorithm> and must fit a 63-character DNS label (kubeflow/katib PR #2468,
# v0.18.0: pkg/webhook/v1beta1/experiment/validator/validator.go).
KATIB_NAME_LIMIT = 40
# Marks the pipeline run an Experiment belongs to (a hash of the KFP run id, a valid label value).
RUN_LABEL = "fmstudy/run"
RUN_ID_ANNOTATION = "fmstudy/run-id"


class SweepFailed(UserError):
    """No trial of the stage produced the objective metric, so there is no winner to pass on."""


def trial_environment() -> dict[str, str]:
    """Trials run ``study ...``: put this interpreter's scripts folder first on PATH."""
    scripts = str(Path(sys.executable).parent)
    return {"PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def stage_fixed(fixed: dict | None) -> dict[str, str]:
    """What a stage holds fixed: the start settings, overridden by what the earlier stages' winners
    feed it (the previous stage's ``best``); unset (empty) values keep the start."""
    known = swept_settings()
    given = {k: str(v) for k, v in (fixed or {}).items() if v not in (None, "")}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"fixed setting {unknown[0]!r}: expected one of {', '.join(known)}")
    return {**start_settings(), **given}


def stage_experiment(stage: str, data_uri: str, output_root: str, sweep_settings: dict,
                     fixed: dict | None, **options) -> tuple[dict, dict[str, str]]:
    """The stage's Experiment (validated) and the settings it holds fixed."""
    sweep = get_sweep(stage)
    fixed = stage_fixed(fixed)
    opts = ExperimentOptions.from_profile(
        sweep_settings, data_uri=data_uri, output_root=output_root, fixed=fixed,
        max_trials=(sweep_settings.get("max_trials") or {}).get(stage), **options)
    experiment = build_experiment(sweep, opts)
    check_experiment(experiment)
    return experiment, fixed


def run_stage(stage: str, backend: SweepBackend, experiment: dict, fixed: dict[str, str], *,
              experiment_uri: str, summary_uri: str, trials_root: str | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Run the stage's (validated) Experiment on ``backend``; return its summary, written to ``summary_uri``.

    The Experiment's YAML goes to ``experiment_uri`` first; the summary is written last, so a stage
    that fails leaves none. Both under the backend's claim on its location. ``trials_root``: where
    each trial wrote its output (``<root>/<trial>/metrics.json``), for the per-epoch histories the
    report's learning curves draw and the training images its first lines name.
    """
    with backend.claim():
        storage.write_text(experiment_uri, to_yaml(experiment))
        outcome = backend.run(experiment, log=log)
        records = trial_records(trials_root, [t.name for t in outcome.trials]) if trials_root else {}
        summary = summarize(stage, fixed, outcome.trials, outcome.best_trial, outcome.condition, outcome.reason,
                            where=outcome.where, records=records)
        storage.write_text(summary_uri, json.dumps(summary, indent=2))
    return summary


def run_sweep_stage(stage: str, data_uri: str, out_dir: str | Path, sweep_settings: dict,
                    fixed: dict[str, str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Run one sweep on this machine (local Katib backend); return (and write) its summary."""
    from katib.backends.local_backend import LocalBackend

    out_dir = Path(out_dir)
    storage.check_writable(str(out_dir))
    settings = from_mapping(SweepSettings, sweep_settings, section="sweeps")
    slots = stage_pack_slots(stage, settings, log)
    experiment, fixed = stage_experiment(
        stage, data_uri, str(out_dir / "outputs"), sweep_settings, fixed,
        parallel_trials=slots or sweep_settings.get("local_parallel_trials") or sweep_settings["parallel_trials"])
    # Each trial's metrics.json holds every epoch, also of a resumed trial: the observation's source.
    backend = LocalBackend(out_dir, extra_env=trial_environment(),
                           trial_metrics_file=str(out_dir / "outputs" / "${trialSpec.Name}" / "metrics.json"))
    # The folder's one writer, then its pack server.
    with backend.claim(), _packs(slots, out_dir, stage, settings) as pack_env:
        backend.extra_env.update(pack_env)
        return run_stage(stage, backend, experiment, fixed, experiment_uri=str(out_dir / EXPERIMENT_FILE),
                         summary_uri=str(out_dir / SUMMARY_FILE), trials_root=str(out_dir / "outputs"), log=log)


def stage_pack_slots(stage: str, settings: SweepSettings, log: Callable[[str], None] = print) -> int | None:
    """How many trials of the stage train in packs at once (``sweeps.local_pack_slots``), or None: one
    process per trial. A stage whose trials differ in a setting packs do not share (sweep A's optimizer,
    C's filters unless ``sweeps.local_pack_pad_filters`` pads them) would make a pack of one per trial:
    a JAX process training them side by side, no program shared, which on this project's CPU ran sweep
    A in 168 s against 63 s as TensorFlow trials (bench/results/2026-12-07-amd-epyc-2c-local-packs.md)."""
    from components.cnn.packed.members import PACK_KEY_SETTINGS

    setting = get_sweep(stage).setting
    if not settings.local_pack_slots:
        return None
    if pad_layers := stage_pad_filters(stage, settings):
        layers = ",".join(map(str, pad_layers))
        log(f"sweep {stage}: a pack's members may differ in the filters of conv layer(s) {layers}, padded to "
            "the grid's largest count (sweeps.local_pack_pad_filters); trials that differ in another layer pack apart")
        return settings.local_pack_slots
    if setting in PACK_KEY_SETTINGS:
        pad = " (sweeps.local_pack_pad_filters pads C's)" if setting == "filters" else ""
        log(f"sweep {stage}: its trials differ in {setting}, which a pack's members share; "
            f"one process per trial (sweeps.local_pack_slots packs a sweep whose trials share one program{pad})")
        return None
    return settings.local_pack_slots


def stage_pad_filters(stage: str, settings: SweepSettings) -> tuple[int, ...]:
    """The conv layers the stage's packs pad (``sweeps.local_pack_pad_filters``): only sweep C's trials
    differ in their filters; none for the others."""
    return tuple(settings.local_pack_pad_filters or ()) if get_sweep(stage).setting == "filters" else ()


@contextmanager
def _packs(slots: int | None, out_dir: Path, stage: str, settings: SweepSettings) -> Iterator[dict[str, str]]:
    """With ``sweeps.local_pack_slots``, a pack server for the stage's trials (its log: PACK_LOG); sweep
    C's packs padded in the conv layers of ``sweeps.local_pack_pad_filters``, to the grid's largest count."""
    if not slots:
        yield {}
        return
    from components.cnn.packed.server import running_server

    pad = stage_pad_filters(stage, settings)
    choices = sorted({int(v) for p in get_sweep(stage).parameters for v in p.values}) if pad else ()
    with running_server(slots, out_dir / PACK_LOG, pad_filters=pad, filter_choices=choices) as env:
        yield env


@dataclass
class ClusterSweep:
    """What the compiled pipeline fixes for a sweep on the cluster (compile options and pipeline
    parameters, never the step pod's environment). The field names are the sweep step's inputs."""

    katib_namespace: str = K8S_NAMESPACE
    trial_image: str = TRAINER_IMAGE
    trial_gpu_image: str = TRAINER_GPU_IMAGE
    work_root: str = ""  # durable root for trial outputs ("" : under the sweep artifact)
    run_id: str = ""  # the KFP run's id: names the Experiments, so runs never share one
    cluster_access: dict = field(default_factory=dict)  # katib.access.ClusterAccess as a dict
    sweep_cleanup: str = "delete"  # on timeout, failure or cancellation: delete or keep
    trial_cpu: str = "2"
    trial_memory: str = "6Gi"

    def __post_init__(self):
        from katib.backends.cluster import ON_STOP_CHOICES

        # Checked before anything is written or created.
        if self.sweep_cleanup not in ON_STOP_CHOICES:
            raise UserError(f"sweep_cleanup {self.sweep_cleanup!r}: expected one of {', '.join(ON_STOP_CHOICES)}")
        if self.work_root and not self.work_root.startswith(("gs://", "s3://", "/")):
            raise UserError(f"work_root {self.work_root!r}: expected a gs:// or s3:// URI (or an absolute path) "
                            "that the trials can reach")

    def experiment_name(self, stage: str) -> str:
        return run_experiment_name(stage, self.run_id) if self.run_id else experiment_name(get_sweep(stage))

    def output_root(self, stage: str, out_uri: str) -> str:
        if self.work_root and self.run_id:
            return storage.join(self.work_root, self.run_id, "sweeps", stage)
        return storage.join(durable_uri(out_uri), "outputs")


def run_key(run_id: str) -> str:
    """A short, label-safe key for a run id (a KFP run id is a 36-character UUID)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:10]


def run_experiment_name(stage: str, run_id: str) -> str:
    """fmstudy-<stage>-<run key>: one Experiment per run and stage, within Katib's name limit."""
    name = f"{experiment_name(get_sweep(stage))}-{run_key(run_id)}"
    if len(name) > KATIB_NAME_LIMIT:
        raise UserError(f"experiment name {name}: {len(name)} characters; Katib allows {KATIB_NAME_LIMIT}")
    return name


def cluster_stage_experiment(stage: str, data_uri: str, out_uri: str, sweep_settings: dict,
                             fixed: dict[str, str] | None, cluster: ClusterSweep, *, gpu: bool = False
                             ) -> tuple[dict, dict[str, str], str]:
    """The Experiment a cluster sweep step creates: (experiment, fixed settings, trials' output root)."""
    output_root = cluster.output_root(stage, out_uri)
    experiment, fixed = stage_experiment(
        stage, durable_uri(data_uri), output_root, sweep_settings, fixed, gpu=gpu,
        namespace=cluster.katib_namespace, image=cluster.trial_image, gpu_image=cluster.trial_gpu_image,
        cpu=cluster.trial_cpu, memory=cluster.trial_memory,
        access=ClusterAccess.from_dict(cluster.cluster_access))
    metadata = experiment["metadata"]
    metadata["name"] = cluster.experiment_name(stage)
    if cluster.run_id:
        metadata["labels"][RUN_LABEL] = run_key(cluster.run_id)
        metadata.setdefault("annotations", {})[RUN_ID_ANNOTATION] = cluster.run_id
    check_experiment(experiment)
    return experiment, fixed, output_root


def launch_sweep_stage(stage: str, data_uri: str, out_uri: str, sweep_settings: dict,
                       fixed: dict[str, str] | None = None, *, gpu: bool = False, timeout_s: float = 6 * 3600,
                       delete_after: bool = False, summary_dir: str | None = None,
                       cluster: ClusterSweep | None = None,
                       log: Callable[[str], None] = print, **launch_options) -> dict:
    """Run one sweep as a Katib Experiment on the cluster; trials write to ``out_uri``/outputs.

    Katib's Trials give the per-trial table (failed ones with their state and reason);
    Katib's currentOptimalTrial names the winner. The Experiment is kept by
    default so its trials can be compared in Katib's UI. ``summary_dir`` (default
    ``out_uri``) is where summary.json goes: a KFP step passes its local artifact folder,
    which KFP uploads to ``out_uri`` when the step ends. ``launch_options`` go to
    :class:`katib.backends.cluster.ClusterBackend` (poll_s, api_client).
    """
    from katib.backends.cluster import ClusterBackend

    cluster = cluster or ClusterSweep()
    experiment, fixed, output_root = cluster_stage_experiment(stage, data_uri, out_uri, sweep_settings, fixed,
                                                              cluster, gpu=gpu)
    # Never replace: a same-named Experiment is this run's own (a retried step waits on it again)
    # or, with a different spec, an error; another run's is never deleted.
    backend = ClusterBackend(timeout_s=timeout_s, delete_after=delete_after, on_stop=cluster.sweep_cleanup,
                             **launch_options)
    return run_stage(stage, backend, experiment, fixed,
                     experiment_uri=storage.join(durable_uri(out_uri), EXPERIMENT_FILE),
                     summary_uri=storage.join(summary_dir or durable_uri(out_uri), SUMMARY_FILE),
                     trials_root=output_root, log=log)


def trial_records(trials_root: str, names: list[str]) -> dict[str, dict]:
    """What each trial's metrics.json adds to its summary row: its objective per epoch (``history``, for
    the learning curves) and the images it trained on (``training_images``, for the report's scale note).
    A trial that wrote none (failed, stopped before its first epoch) adds nothing, and so does a value
    that is not the trial runner's."""
    records = {}
    for name in names:
        uri = storage.join(trials_root, name, "metrics.json")
        if not storage.exists(uri):
            continue
        try:
            metrics = json.loads(storage.read_text(uri))
            history = metrics.get("history", {}).get(OBJECTIVE_METRIC)
        except (ValueError, AttributeError):
            continue  # not a trial runner's metrics.json: nothing to add, the rest of the summary stands
        record = {}
        if isinstance(history, list) and all(isinstance(v, int | float) for v in history):
            record["history"] = [float(v) for v in history]
        if isinstance(metrics.get("training_images"), int):
            record["training_images"] = metrics["training_images"]
        if record:
            records[name] = record
    return records


def summarize(stage: str, fixed: dict[str, str], trials: list[TrialRow], best_trial: str | None,
              condition: str, reason: str, where: str, records: dict[str, dict] | None = None) -> dict:
    """The stage's winner in the study's terms, plus every trial's objective (and, where known, what
    :func:`trial_records` read of it: its objective per epoch and its training images)."""
    sweep = get_sweep(stage)
    records = records or {}
    rows = [{
        "name": t.name, "state": t.state, "reason": t.reason,
        "combination": list(sweep.combination(t.assignments)),
        "index": sweep.index_of(sweep.combination(t.assignments)),
        OBJECTIVE_METRIC: t.objective,
        **records.get(t.name, {}),
    } for t in trials]
    best = next((r for r in rows if r["name"] == best_trial and r[OBJECTIVE_METRIC] is not None), None)
    if best is None:
        raise SweepFailed(f"sweep {stage}: no trial produced {OBJECTIVE_METRIC} ({condition}: {reason}; see {where})")
    winner = next(t for t in trials if t.name == best_trial)
    return {
        "stage": stage,
        "description": sweep.description,
        "fixed": fixed,
        "best": {**fixed, **sweep.settings(winner.assignments)},
        "best_combination": best["combination"],
        "best_index": best["index"],
        "best_trial": best_trial,
        OBJECTIVE_METRIC: best[OBJECTIVE_METRIC],
        "grid_size": sweep.grid_size,
        # The grid's axes, for the report's heatmaps.
        "parameters": [p.name for p in sweep.parameters],
        "values": [list(p.values) for p in sweep.parameters],
        "condition": condition,
        "reason": reason,
        "trials": rows,
    }
