"""Katib's pbt service (pkg/suggestion/v1beta1/pbt/service.py at v0.19.0), run locally, with its checkpoint hand-over.

Settings: ``n_population`` (at least 5), ``truncation_threshold`` (0..1),
``suggestion_trial_dir`` (where a trial reads and writes its checkpoint) and
``resample_probability`` (absent: perturb). As ``PbtJobQueue`` does, the first
generation is ``n_population`` random draws from each parameter's grid
(``HyperParameterSampler``: min..max by step, or the list), grown by further
draws while at most ``n_population`` trials have finished. Once more than that
have, the next generation is made from them: values below the
``truncation_threshold`` quantile are *exploited* (``int(n * threshold)`` of
them, shuffled) and the rest *explored*; an exploit child takes the
hyperparameters of a random member at or above the ``1 - threshold`` quantile,
an explore child perturbs each value (int, double: x0.8 or x1.2 within
min..max; list: the next or previous entry) or, with ``resample_probability``,
draws it afresh. Requests beyond a generation's size draw more children from
the generation before. Failed trials run again with the same values and parent.

The checkpoint hand-over is Katib's: a trial's folder is ``<experiment>/<trial>``
on the suggestion's volume (pkg/webhook/v1beta1/pod/inject_webhook.go,
mutateSuggestionVolume, mounts it at ``suggestion_trial_dir``), and a child's
folder starts as a copy of its parent's (``PbtJobQueue.append``). Locally the
volume is ``<run dir>/suggestion/``, and every path in the trial's command,
args and env at or under ``suggestion_trial_dir`` is moved into the trial's
folder there. Kept from Katib: an exploit child's parent, whose checkpoint it
starts from, is the truncated trial itself, not the member whose values it
takes (``generate``: ``parent=job.uid``). Changed: trials keep the backend's
names (Katib names them after the job's uuid); a clamped int is written as an
int (Katib writes ``max(float(min), ...)``, e.g. "10.0"); Katib's check of
``resample_probability`` compares the text with numbers, which raises in
Python 3, so there the setting cannot be used at all; here it is a number in 0..1.
"""

from __future__ import annotations

import itertools
import posixpath
import random
import shutil
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from components.core.errors import UserError
from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.katib_api import DOUBLE, INT, range_points
from katib.backends.local.mounts import ABSOLUTE_PATH
from katib.backends.local.records import FAILED, TERMINAL_STATES, TrialRecord
from katib.backends.local.search_space import parameter_type
from katib.backends.local.suggestion_service import Suggestion, SuggestionService

REQUIRED = ("suggestion_trial_dir", "n_population", "truncation_threshold")
SETTINGS = (*REQUIRED, "resample_probability")
VOLUME_FOLDER = "suggestion"
# Katib draws with numpy's unseeded global generator; tests replace this with a seeded one.
new_random = random.Random
# PbtJob.get: the labels Katib puts on each trial.
GENERATION_LABEL = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT_LABEL = "pbt.suggestion.katib.kubeflow.org/parent"


class PbtService(SuggestionService):
    def __init__(self, spec: ExperimentSpec, run_dir: Path) -> None:
        self.spec = spec
        (self.checkpoint_path, self.population, self.threshold, self.resample) = _read_settings(spec)
        self.samplers = [_Sampler(p) for p in spec.parameters]
        self.volume = run_dir / VOLUME_FOLDER / spec.name
        self.random = new_random()
        self.scale = 1 if spec.maximize else -1  # the service always maximizes
        self.ids = itertools.count()
        # PbtJobQueue's queues; a job is {uid, params, generation, parent, metric_value}.
        self.pending: list[dict[str, Any]] = []
        self.running: dict[str, dict[str, Any]] = {}
        self.completed: dict[str, dict[str, Any]] = {}
        self.pool: dict[str, list[str]] = {"previous": [], "current": []}
        self._seed(self.population)

    # ---- GetSuggestions ---------------------------------------------------------

    def suggest(self, request: int, records: Sequence[TrialRecord]) -> list[Suggestion]:
        for record in records:
            if record.state in TERMINAL_STATES and record.name in self.running:
                self._update(record)
        if len(self.pending) < request:
            self._generate(request)
        jobs = [self.pending.pop(0) for _ in range(request)]
        suggestions = []
        for job in jobs:
            labels = {GENERATION_LABEL: str(job["generation"])}
            if job["parent"] is not None:
                labels[PARENT_LABEL] = job["parent"]
            suggestions.append(Suggestion([{"name": k, "value": v} for k, v in job["params"].items()], labels,
                                          uid=job["uid"]))
            self.running[job["uid"]] = job
        return suggestions

    def bind(self, suggestion: Suggestion, trial_name: str) -> None:
        """The job is now the trial ``trial_name``: its folder is made (a copy of its parent's, if any)."""
        job = self.running.pop(suggestion.uid)
        job["uid"] = trial_name
        self.running[trial_name] = job
        folder = self.volume / trial_name
        if folder.exists():
            shutil.rmtree(folder)
        if job["parent"] is None:
            folder.mkdir(parents=True)
        else:
            shutil.copytree(self.volume / job["parent"], folder)

    def path_map(self, trial_name: str) -> Callable[[str], str]:
        mount = posixpath.normpath(self.checkpoint_path)
        local = self.volume / trial_name

        def moved(match: Any) -> str:
            path = posixpath.normpath(match.group(0))
            if path != mount and not path.startswith(mount.rstrip("/") + "/"):
                return match.group(0)
            text = str(local / path[len(mount):].lstrip("/"))
            return text + "/" if match.group(0).endswith("/") else text

        return lambda text: ABSOLUTE_PATH.sub(moved, text)

    # ---- PbtJobQueue ------------------------------------------------------------

    def _update(self, record: TrialRecord) -> None:
        job = self.running.pop(record.name)
        value = record.objective_value
        job["metric_value"] = None if value is None else self.scale * value
        self.completed[job["uid"]] = job
        if record.state == FAILED or value is None:
            # update: a failed (or killed) trial is queued again, same values, generation and parent.
            self._append(job["params"], job["generation"], job["parent"])
            return
        self.pool["current"].append(job["uid"])

    def _seed(self, count: int) -> None:
        for _ in range(count):
            self._append({s.name: s.sample(self.random) for s in self.samplers}, 0, None)

    def _append(self, params: dict[str, str], generation: int, parent: str | None) -> None:
        self.pending.append({"uid": f"job-{next(self.ids)}", "params": dict(params), "generation": generation,
                             "parent": parent, "metric_value": None})

    def _generate(self, count: int) -> None:
        if len(self.pool["current"]) <= self.population:
            if not self.pool["previous"]:
                self._seed(count)  # still the first generation: more random draws
                return
            exploit, explore, upper = self._segment("previous", count)
        else:
            exploit, explore, upper = self._segment("current", self.population)
            self.pool["previous"], self.pool["current"] = self.pool["current"], []
        for uid in exploit:  # the truncated trial's checkpoint, a top member's values
            donor = self.completed[self.random.choice(upper)]
            self._append(donor["params"], self.completed[uid]["generation"] + 1, uid)
        for uid in explore:
            job = self.completed[uid]
            params = {}
            for sampler in self.samplers:
                value = job["params"][sampler.name]
                if self.resample is None:
                    params[sampler.name] = sampler.perturb(value, self.random)
                elif self.random.random() < self.resample:
                    params[sampler.name] = sampler.sample(self.random)
                else:
                    params[sampler.name] = value
            self._append(params, job["generation"] + 1, uid)

    def _segment(self, pool: str, count: int) -> tuple[list[str], list[str], list[str]]:
        """_segment_sample_pool: the pool split at the threshold's quantiles, count of it kept."""
        jobs = [self.completed[uid] for uid in self.pool[pool]]
        low, high = np.quantile([j["metric_value"] for j in jobs], (self.threshold, 1 - self.threshold))
        exploit = [j["uid"] for j in jobs if j["metric_value"] < low]
        explore = [j["uid"] for j in jobs if j["metric_value"] >= low]
        upper = [j["uid"] for j in jobs if j["metric_value"] >= high]
        self.random.shuffle(exploit)
        self.random.shuffle(explore)
        exploit = exploit[: int(count * self.threshold)]
        return exploit, explore[: count - len(exploit)], upper

    # ---- state --------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"pending": self.pending, "running": self.running, "completed": self.completed, "pool": self.pool,
                "next_id": next(self.ids)}

    def restore(self, state: dict[str, Any]) -> None:
        self.pending, self.running, self.completed = state["pending"], state["running"], state["completed"]
        self.pool = state["pool"]
        self.ids = itertools.count(state["next_id"])


class _Sampler:
    """HyperParameterSampler: a parameter's grid (or list), drawn from and perturbed."""

    def __init__(self, parameter: dict[str, Any]) -> None:
        self.name, self.kind = parameter["name"], parameter_type(parameter)
        space = parameter["feasibleSpace"]
        if self.kind in (INT, DOUBLE):
            step = space.get("step") or ("1" if self.kind == INT else None)  # search_space.py: int step 1
            if step is None:
                raise UserError(f"parameter {self.name!r}: algorithm 'pbt' draws a double from min..max by step,"
                                " and Katib's pbt service needs feasibleSpace.step for it; set one")
            low, high, size = Decimal(str(space["min"])), Decimal(str(space["max"])), Decimal(str(step))
            points = [low + i * size for i in range(range_points(low, high, size))]
            self.low, self.high = float(low), float(high)
            self.values = [str(int(p)) if self.kind == INT else str(float(p)) for p in points]
        else:
            self.values = [str(v) for v in space["list"]]

    def sample(self, rng: random.Random) -> str:
        return rng.choice(self.values)

    def perturb(self, value: str, rng: random.Random) -> str:
        if self.kind == INT:
            return str(int(max(self.low, min(self.high, int(int(value) * rng.choice((0.8, 1.2)))))))
        if self.kind == DOUBLE:
            return str(max(self.low, min(self.high, float(value) * rng.choice((0.8, 1.2)))))
        # The next or previous entry; past the last wraps to the first, before the first to the last
        # (Python's index -1), as in Katib.
        index = self.values.index(value) + rng.choice((-1, 1))
        return self.values[0] if index >= len(self.values) else self.values[index]


def _read_settings(spec: ExperimentSpec) -> tuple[str, int, float, float | None]:
    """ValidateAlgorithmSettings, as a line each."""
    settings, where = spec.algorithm_settings, "algorithm 'pbt'"
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r} for {where}; expected one of: {', '.join(SETTINGS)}")
    missing = [k for k in REQUIRED if k not in settings]
    if missing:
        raise UserError(f"{where} needs the settings {', '.join(missing)} (Required params missing)")
    population = _number(settings, "n_population", int)
    if population < 5:
        raise UserError(f"setting n_population={settings['n_population']!r} of {where}: expected 5 or more")
    threshold = _number(settings, "truncation_threshold", float)
    if not 0 <= threshold <= 1:
        raise UserError(f"setting truncation_threshold={settings['truncation_threshold']!r} of {where}:"
                        " expected a number between 0 and 1, inclusive")
    resample = None
    if "resample_probability" in settings:
        resample = _number(settings, "resample_probability", float)
        if not 0 <= resample <= 1:
            raise UserError(f"setting resample_probability={settings['resample_probability']!r} of {where}:"
                            " expected a number between 0 and 1, inclusive (or no setting: perturb)")
    if not settings["suggestion_trial_dir"].startswith("/"):
        raise UserError(f"setting suggestion_trial_dir={settings['suggestion_trial_dir']!r} of {where}:"
                        " expected an absolute path (the checkpoint folder's mount path in the trial)")
    return settings["suggestion_trial_dir"], population, threshold, resample


def _number(settings: dict[str, str], name: str, kind: type) -> Any:
    try:
        return kind(settings[name])
    except ValueError:
        raise UserError(f"setting {name}={settings[name]!r} of algorithm 'pbt': expected a number") from None
