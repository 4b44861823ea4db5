"""The study's three sweeps, defined once.

Each :class:`Sweep` knows its Katib parameters, how an assignment becomes the
trial runner's settings, and its grid in lexicographic order (the order in
which the study numbered its combinations). The Katib manifests
(``katib.experiments``) and the local runs are both made from these.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from components.cnn.hparams import ACTIVATIONS, OPTIMIZERS, SEED_ACTIVATIONS, SEED_FILTERS
from components.core.errors import UserError
from katib.backends.local import katib_api

FILTER_CHOICES = (16, 32, 64)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # Katib parameterType: categorical (strings) or discrete (numbers)
    values: tuple[str, ...]


@dataclass(frozen=True)
class Sweep:
    """One stage of Question 2: which trial settings it varies and which it takes as fixed."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    setting: str  # the trial runner setting these parameters fill: optimizer, activations, filters

    @property
    def grid_size(self) -> int:
        """Katib's count of this sweep's grid (one point per listed value, multiplied out)."""
        return katib_api.grid_size([{"parameterType": p.type, "feasibleSpace": {"list": list(p.values)}}
                                    for p in self.parameters])

    def grid(self) -> list[tuple[str, ...]]:
        """Every combination, lexicographic in the listed value order (the study's numbering)."""
        return list(itertools.product(*(p.values for p in self.parameters)))

    def index_of(self, combination: tuple) -> int:
        """Zero-based position of a combination in :meth:`grid` (the study's 'combination 68' is 67)."""
        combo = tuple(str(v) for v in combination)
        index = 0
        for p, value in zip(self.parameters, combo, strict=True):
            if value not in p.values:
                raise UserError(f"{p.name}={value}: expected one of {', '.join(p.values)}")
            index = index * len(p.values) + p.values.index(value)
        return index

    def combination_at(self, index: int) -> tuple[str, ...]:
        if not 0 <= index < self.grid_size:
            raise UserError(f"combination index {index}: expected 0..{self.grid_size - 1}")
        values = []
        for p in reversed(self.parameters):
            index, position = divmod(index, len(p.values))
            values.append(p.values[position])
        return tuple(reversed(values))

    def combination(self, assignments: dict[str, str]) -> tuple[str, ...]:
        """The parameter values of a trial's assignments, in parameter order."""
        try:
            return tuple(str(assignments[p.name]) for p in self.parameters)
        except KeyError as err:
            raise UserError(f"sweep {self.name}: assignments lack parameter {err.args[0]}") from None

    def assignments_from(self, config: dict) -> dict[str, str]:
        """The parameter assignments a trial ran with, read back from its config (metrics.json)."""
        value = config[self.setting]
        values = value if isinstance(value, list | tuple) else str(value).split(",")
        return {p.name: str(v) for p, v in zip(self.parameters, values, strict=True)}

    def settings(self, assignments: dict[str, str]) -> dict[str, str]:
        """Assignments as trial runner settings: {'optimizer': 'Nadam'} or {'activations': 'selu,relu,relu,relu'}."""
        return {self.setting: ",".join(self.combination(assignments))}


OPTIMIZER_SWEEP = Sweep(
    name="optimizer",
    description="Question 2A: the eight Keras optimizers",
    parameters=(Parameter("optimizer", "categorical", OPTIMIZERS),),
    setting="optimizer",
)
ACTIVATION_SWEEP = Sweep(
    name="activations",
    description="Question 2B: one activation per conv layer, with the best optimizer",
    parameters=tuple(Parameter(f"activation{i}", "categorical", ACTIVATIONS) for i in range(1, 5)),
    setting="activations",
)
FILTER_SWEEP = Sweep(
    name="filters",
    description="Question 2C: filters per conv layer, with the best optimizer and activations",
    parameters=tuple(Parameter(f"filters{i}", "discrete", tuple(map(str, FILTER_CHOICES))) for i in range(1, 5)),
    setting="filters",
)
# In chain order: each stage fixes what the earlier ones found.
SWEEPS = {s.name: s for s in (OPTIMIZER_SWEEP, ACTIVATION_SWEEP, FILTER_SWEEP)}

# Settings a stage holds fixed before any earlier stage has run (the hand-written CNN's).
BASE_SETTINGS = {"optimizer": "Adam", "activations": ",".join(SEED_ACTIVATIONS),
                 "filters": ",".join(map(str, SEED_FILTERS))}


def get_sweep(name: str) -> Sweep:
    if name not in SWEEPS:
        raise UserError(f"sweep {name!r}: expected one of {', '.join(SWEEPS)}")
    return SWEEPS[name]
