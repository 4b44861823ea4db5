"""Katib's hyperband service (pkg/suggestion/v1beta1/hyperband/service.py at v0.19.0), run locally.

Settings: ``resource_name`` (the parameter that is the budget, e.g. epochs),
``r_l`` (the most budget one trial gets) and ``eta`` (default 3). The service
runs ``s_max + 1`` brackets, ``s = s_max .. 0`` with ``s_max = int(log(r_l) /
log(eta))``. Each bracket starts with a first rung of random trials at budget
``int(r_l * eta ** -s)``; each later rung keeps the top ``ceil(n_i / eta)`` of
the rung before (by the objective) with the other parameters carried over and
the budget raised to ``int(r * eta ** i)``. The state Katib keeps in the
Suggestion's algorithmSettings (``HyperBandParam``) is kept here as a dict.

Katib's quirks, kept: the first rung of every bracket has as many trials as the
controller asks for (GetSuggestions sets ``n`` to ``current_request_number``,
"a hack" in its own words), not the textbook ``ceil((s_max+1) * eta**s /
(s+1))``; the resource value is written as an integer text (``str(int)``) for
an int or a double parameter alike; a rung waits until every trial of the rung
before has succeeded (``_get_top_trial`` raises otherwise, and the controller
retries). Locally a rung with a failed or early-stopped trial can never be
promoted, so the sweep ends Failed saying so, where Katib would retry forever.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from components.core.errors import UserError
from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.katib_api import (
    CATEGORICAL,
    DISCRETE,
    DOUBLE,
    HYPERBAND_DEFAULT_ETA,
    INT,
    hyperband_parallel_needed,
    hyperband_s_max,
)
from katib.backends.local.records import RUNNING, SUCCEEDED, TrialRecord
from katib.backends.local.search_space import parameter_type
from katib.backends.local.suggestion_service import Suggestion, SuggestionService

SETTINGS = ("resource_name", "r_l", "eta")


class HyperbandService(SuggestionService):
    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.resource_name, self.r_l, eta = _read_settings(spec)
        self.random = random.Random()
        # HyperBandParam.convert: the state's starting values, derived from the settings.
        self.eta = float(eta)
        self.s_max = hyperband_s_max(self.r_l, self.eta)
        self.b_l = (self.s_max + 1) * self.r_l
        self.current_s = self.s_max
        self.current_i = 0
        self.n = _bracket_size(self.s_max, self.eta, self.current_s)
        self.r = self.r_l * self.eta ** (-self.current_s)
        self.evaluating_trials = 0

    # ---- GetSuggestions ---------------------------------------------------------

    def suggest(self, request: int, records: Sequence[TrialRecord]) -> list[Suggestion] | None:
        if self.current_s < 0:
            return []  # GetSuggestions: the outer loop has finished, an empty reply (the suggestion end)
        saved = self.state()
        self.n = request  # GetSuggestions: "a hack to get current request number"
        if self.evaluating_trials == 0:
            suggestions = self._first_rung()
        else:
            suggestions = self._next_rung(records)
            if suggestions is None:
                self.restore(saved)  # Katib's reply failed, so its Suggestion's state did not change
                return None
        # _make_bracket: a rung that is not the bracket's last is evaluated before the next one.
        self.evaluating_trials = len(suggestions) if self.current_i < self.current_s else 0
        if self.evaluating_trials == 0:
            self._next_bracket()
        return suggestions

    def _first_rung(self) -> list[Suggestion]:
        """_make_master_bracket: n random trials, the resource at int(r)."""
        budget = str(int(self.r))
        suggestions = []
        for _ in range(self.n):
            values = {p["name"]: _random_value(p, self.random) for p in self.spec.parameters}
            values[self.resource_name] = budget
            suggestions.append(Suggestion([{"name": k, "value": v} for k, v in values.items()]))
        return suggestions

    def _next_rung(self, records: Sequence[TrialRecord]) -> list[Suggestion] | None:
        """_make_child_bracket: the top ceil(n_i / eta) of the last rung, at the next rung's budget."""
        n_i = math.ceil(self.n * self.eta ** (-self.current_i))
        top = int(math.ceil(n_i / self.eta))
        self.current_i += 1  # _update_hbParameters (current_i cannot pass current_s here)
        budget = str(int(self.r * self.eta**self.current_i))
        last = self._last_rung(records)
        if any(r.state != SUCCEEDED for r in last):
            return None
        # _get_top_trial: sorted by the objective, best first; a stable sort keeps ties in start order.
        ranked = sorted(last, key=lambda r: r.objective_value, reverse=self.spec.maximize)[:top]
        # _copy_trials: every assignment kept but the resource's.
        return [Suggestion([{"name": a["name"], "value": budget if a["name"] == self.resource_name else a["value"]}
                            for a in r.assignments]) for r in ranked]

    def _last_rung(self, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        """_get_last_trials: the last evaluating_trials trials (Katib sorts by start time; here by creation)."""
        return list(records)[-self.evaluating_trials:]

    def _next_bracket(self) -> None:
        """_new_hbParameters: the next bracket's s, n and r."""
        self.current_s -= 1
        self.current_i = 0
        if self.current_s >= 0:
            self.n = _bracket_size(self.s_max, self.eta, self.current_s)
            self.r = self.r_l * self.eta ** (-self.current_s)

    def stuck(self, records: Sequence[TrialRecord]) -> str | None:
        if self.evaluating_trials == 0 or self.current_s < 0:
            return None
        last = self._last_rung(records)
        bad = [r.name for r in last if r.state not in (SUCCEEDED, RUNNING)]
        if not bad:
            return None
        return (f"hyperband cannot promote the rung of {len(last)} trial(s): {', '.join(bad)} did not succeed,"
                " and Katib's hyperband service ranks a rung only when all of it succeeded")

    # ---- state (Katib: the Suggestion's algorithmSettings) ----------------------

    def state(self) -> dict[str, Any]:
        keys = ("eta", "s_max", "r_l", "b_l", "r", "n", "current_s", "current_i", "evaluating_trials")
        return {k: getattr(self, k) for k in keys}

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def _bracket_size(s_max: int, eta: float, s: int) -> int:
    """HyperBandParam.convert / _new_hbParameters: n = ceil((s_max + 1) * eta**s / (s + 1))."""
    return int(math.ceil(float(s_max + 1) * (float(eta**s) / float(s + 1))))


def _random_value(parameter: dict[str, Any], rng: random.Random) -> str:
    """parsing_util.parse_x_next_vector over ParameterConfig.random_sample: uniform in [min, max] per dimension."""
    kind, space = parameter_type(parameter), parameter["feasibleSpace"]
    if kind == INT:
        return str(int(round(rng.uniform(int(space["min"]), int(space["max"])), 0)))
    if kind == DOUBLE:
        return str(rng.uniform(float(space["min"]), float(space["max"])))
    if kind == DISCRETE:  # the list entry nearest a uniform draw between its least and greatest
        values = [int(float(v)) for v in space["list"]]
        draw = rng.uniform(min(values), max(values))
        return str(min(values, key=lambda v: abs(v - draw)))
    if kind == CATEGORICAL:  # one uniform draw per entry (a one-hot vector), the largest wins
        draws = [rng.random() for _ in space["list"]]
        return str(space["list"][draws.index(max(draws))])
    raise UserError(f"parameter {parameter['name']!r}: hyperband cannot sample type {kind!r}")


def _read_settings(spec: ExperimentSpec) -> tuple[str, float, int]:
    """ValidateAlgorithmSettings, as a line each (pkg/suggestion/v1beta1/hyperband/service.py)."""
    settings = spec.algorithm_settings
    where = "algorithm 'hyperband'"
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r} for {where}; expected one of: {', '.join(SETTINGS)}")
    if "r_l" not in settings or "resource_name" not in settings:
        raise UserError(f"{where} needs the settings r_l and resource_name (r_l and resource_name must be set)")
    try:
        r_l = float(settings["r_l"])
    except ValueError:
        r_l = -1.0
    if not r_l > 0:
        raise UserError(f"setting r_l={settings['r_l']!r} of {where}: expected a number above 0")
    eta = HYPERBAND_DEFAULT_ETA
    if "eta" in settings:
        try:
            eta = int(float(settings["eta"]))
        except ValueError:
            eta = 1
        eta = eta if eta > 0 else HYPERBAND_DEFAULT_ETA  # the service's fallback for eta <= 0
        if eta == 1:  # log(1) = 0: Katib's check divides by it
            raise UserError(f"setting eta={settings['eta']!r} of {where}: expected an integer of 2 or more")
    needed = hyperband_parallel_needed(r_l, eta)
    if spec.parallel_trial_count < needed:
        raise UserError(f"{where} with r_l={settings['r_l']}, eta={eta} needs spec.parallelTrialCount of at"
                        f" least {needed} (the first bracket's size); it is {spec.parallel_trial_count}")
    resource = settings["resource_name"]
    if resource not in spec.parameter_names:
        raise UserError(f"setting resource_name={resource!r} of {where}: expected one of the parameters:"
                        f" {', '.join(spec.parameter_names)}")
    return resource, r_l, eta
