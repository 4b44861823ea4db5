"""The study's sweeps (Question 2) as data: one definition each, in chain order.

A :class:`Sweep` says everything about one sweep: its name and titles, its Katib parameters,
the trial setting they fill (one ``study train`` flag), the study's published figure, and the
sweep whose winner it starts from. Its grid is numbered lexicographically in the listed value
order: the order in which the study numbered its combinations.

The Katib Experiments (``katib.experiments``), the local and cluster runs (``katib.sweep``), the
pipeline's sweep tasks, the report's sections and the CLI's choices all loop over :data:`SWEEPS`.
Adding a sweep is one :func:`register` call, plus the model knob it varies (a ``TrialConfig``
field with its ``study train`` flag), its trial cap in ``profiles.yaml`` and the report step's
input. Nothing here imports Keras or Katib: the report and ``study --help`` read it too.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from components.cnn.hparams import (
    ACTIVATIONS,
    DEFAULT_LEARNING_RATE,
    NUM_CONV,
    OPTIMIZERS,
    STUDY_ACTIVATIONS,
    STUDY_FILTERS,
    TrialConfig,
)
from components.core.config import Rule, ruled
from components.core.errors import UserError
from components.core.rules import FRACTION, INTEGER, NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, one_of

FILTER_CHOICES = (16, 32, 64)
# Katib's grid takes only list-valued parameters: names as categorical, numbers as discrete.
PARAMETER_TYPES = ("categorical", "discrete")


# A stage's trial count: 0 would run nothing (and Katib would refuse it); null is the whole grid.
MAX_TRIALS_RULE = Rule("a count per stage, e.g. {optimizer: 8}",
                       items=(int | None, POSITIVE_INT.with_null("the whole grid")))


# The searches a profile's sweeps may use, and the Katib settings the study gives them.
SEARCH_ALGORITHMS = ("grid", "hyperband", "pbt")
PBT_POPULATION = Rule("an integer of 5 or more (Katib's pbt)", lambda v: v >= 5)
HYPERBAND_ETA = Rule("an integer of 2 or more (Katib's hyperband)", lambda v: v >= 2)
# Conv layers whose filter counts a pack's members may differ in (components.cnn.packed.members).
PAD_FILTERS_RULE = Rule(f"conv layer numbers from 1 to {NUM_CONV}, each once, e.g. 3,4",
                        lambda v: len(v) > 0 and len(set(v)) == len(v) and all(1 <= n <= NUM_CONV for n in v),
                        canonical=lambda v: tuple(sorted(v)))


@dataclass(frozen=True)
class SweepSettings:
    """A profile's ``sweeps`` section: what every trial of every sweep runs with. No defaults: the
    profiles say them (``learning_rate`` is absent where a KFP struct dropped its null)."""

    epochs: int = ruled(POSITIVE_INT)
    batch_size: int = ruled(POSITIVE_INT)
    seed: int = ruled(INTEGER)
    bn_momentum: float = ruled(FRACTION)
    parallel_trials: int = ruled(POSITIVE_INT)  # Katib's parallelTrialCount on the cluster
    local_parallel_trials: int = ruled(POSITIVE_INT)  # trials at once on this machine
    max_failed_trials: int = ruled(NON_NEGATIVE_INT)
    max_trials: dict = ruled(MAX_TRIALS_RULE)  # per sweep; null (or absent): the whole grid
    early_stopping: bool  # Katib's medianstop
    learning_rate: float | None = ruled(POSITIVE_NUMBER.with_null(DEFAULT_LEARNING_RATE),
                                        default=None)  # None: the optimizer's Keras default
    # Each trial's training images (study train --train-images); None, or absent: all of them.
    train_images: int | None = ruled(POSITIVE_INT.with_null("all training images"), default=None)
    # How each sweep searches (Katib's algorithmName): the grid, or hyperband with the epochs as its
    # resource (a trial trains 1 to `epochs` epochs), or pbt (each trial trains `epochs` epochs on from its
    # parent's weights). Absent: the grid.
    algorithm: str = ruled(one_of(SEARCH_ALGORITHMS), default="grid")
    pbt_population: int = ruled(PBT_POPULATION, default=8)  # pbt's n_population
    hyperband_eta: int = ruled(HYPERBAND_ETA, default=3)  # hyperband's eta
    # On this machine, train the trials in packs (components/cnn/packed/server.py, JAX): this many
    # members at once, and as many trials at once. None, or absent: one process trains each trial.
    local_pack_slots: int | None = ruled(POSITIVE_INT.with_null("one process per trial"), default=None)
    # With local_pack_slots: the conv layers (1 to 4) whose filter counts may differ inside a pack, each
    # padded to the grid's largest count (components/cnn/packed/padding.py), so sweep C's trials pack too.
    # None, or absent: none; a sweep C trial is then a pack of one, and C runs one process per trial.
    local_pack_pad_filters: tuple[int, ...] | None = ruled(PAD_FILTERS_RULE.with_null("no padding"), default=None)


def trial_flag(setting: str) -> str:
    """A TrialConfig field's ``study train`` flag: batch_size is --batch-size."""
    return "--" + setting.replace("_", "-")


@dataclass(frozen=True)
class Parameter:
    """One Katib parameter: its name, parameterType and feasible values (strings, as Katib keeps them)."""

    name: str
    type: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class StudyFigure:
    """What the study published for a sweep; the report shows it beside ours."""

    best: tuple[str, ...]  # the winner's value of each parameter, in parameter order
    accuracy: float  # its validation accuracy
    index: int | None = None  # its zero-based grid position ("combination 68" is 67); None: the study gave none
    note: str = ""  # what else the report says about the study's run of this sweep


@dataclass(frozen=True)
class Sweep:
    """One stage of Question 2: the trial setting it varies and the sweep whose winner it holds fixed.

    A stage's winner is the settings its best trial ran with: everything the stage held fixed
    plus its own ``setting``. Every sweep that names it in ``after`` holds all of that fixed.
    """

    name: str  # the stage: CLI choice, Experiment fmstudy-<name>, summary.json's "stage"
    title: str  # the report section's heading
    label: str  # short: the pipeline task's display name, the figures' titles
    description: str  # one line for summary.json and Katib's trial parameters
    parameters: tuple[Parameter, ...]
    setting: str  # the TrialConfig field (study train --<setting>) the parameters fill, comma-joined
    start: str | None = None  # the setting's value before this sweep has run; None: the profile's
    study: StudyFigure | None = None
    after: str | None = None  # the sweep whose winner this one starts from; None: the hand-written CNN

    @property
    def flag(self) -> str:
        """The ``study train`` flag the setting is passed by."""
        return trial_flag(self.setting)

    @property
    def grid_size(self) -> int:
        size = 1
        for p in self.parameters:
            size *= len(p.values)
        return size

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

    def study_settings(self) -> dict[str, str]:
        """The settings the study's winner handed on ({} where the study published none)."""
        if self.study is None:
            return {}
        return self.settings(dict(zip((p.name for p in self.parameters), self.study.best, strict=True)))


# Registered in chain order: a sweep comes after the one it starts from.
SWEEPS: dict[str, Sweep] = {}
TRIAL_SETTINGS = tuple(f.name for f in dataclasses.fields(TrialConfig))


def register(sweep: Sweep) -> Sweep:
    """Add a sweep to the study (after the one it starts from); a bad definition is refused here."""
    where = f"sweep {sweep.name}"
    if not (sweep.name.isidentifier() and sweep.name.islower()):
        # It names the report step's input (<name>_sweep) and, with '-' for '_', the Experiment.
        raise UserError(f"{where}: expected a lower-case name of letters, digits and '_'")
    if sweep.name in SWEEPS:
        raise UserError(f"{where}: defined twice")
    if sweep.after is not None and sweep.after not in SWEEPS:
        raise UserError(f"{where}: after={sweep.after!r}: expected one of {', '.join(SWEEPS)} (defined before it)")
    if sweep.setting not in TRIAL_SETTINGS:
        raise UserError(f"{where}: setting {sweep.setting!r}: expected a trial setting, one of "
                        f"{', '.join(TRIAL_SETTINGS)}")
    for p in sweep.parameters:
        if p.type not in PARAMETER_TYPES or not p.values or not all(isinstance(v, str) for v in p.values):
            raise UserError(f"{where}: parameter {p.name}: expected a type of {' or '.join(PARAMETER_TYPES)} "
                            "and a list of string values")
    if sweep.study is not None and sweep.study.index not in (None, sweep.index_of(sweep.study.best)):
        raise UserError(f"{where}: the study's index {sweep.study.index} is not its best's "
                        f"({sweep.index_of(sweep.study.best)})")
    SWEEPS[sweep.name] = sweep
    return sweep


def get_sweep(name: str) -> Sweep:
    if name not in SWEEPS:
        raise UserError(f"sweep {name!r}: expected one of {', '.join(SWEEPS)}")
    return SWEEPS[name]


def swept_settings() -> tuple[str, ...]:
    """The trial settings some sweep fills: what a stage may be given as fixed."""
    return tuple(dict.fromkeys(s.setting for s in SWEEPS.values()))


def start_settings() -> dict[str, str]:
    """What a stage holds fixed before any earlier stage has run: the hand-written CNN's settings."""
    return {s.setting: s.start for s in SWEEPS.values() if s.start is not None}


def earlier(name: str) -> list[Sweep]:
    """The sweeps whose winners reach this one, first first."""
    chain, sweep = [], get_sweep(name)
    while sweep.after is not None:
        sweep = get_sweep(sweep.after)
        chain.insert(0, sweep)
    return chain


def study_fixed(name: str) -> dict[str, str]:
    """What a stage holds fixed when every earlier stage found the study's winner."""
    fixed = start_settings()
    for sweep in earlier(name):
        fixed.update(sweep.study_settings())
    return fixed


# --------------------------------------------------------------------- the study's three

OPTIMIZER_SWEEP = register(Sweep(
    name="optimizer",
    title="Question 2A: optimizers",
    label="sweep A: optimizers",
    description="Question 2A: the eight Keras optimizers",
    parameters=(Parameter("optimizer", "categorical", OPTIMIZERS),),
    setting="optimizer",
    start="Adam",
    study=StudyFigure(best=("Nadam",), accuracy=0.9305,
                      note="Ftrl at its default settings stayed near 10% in the study"),
))
ACTIVATION_SWEEP = register(Sweep(
    name="activations",
    title="Question 2B: activations per conv layer",
    label="sweep B: activations",
    description="Question 2B: one activation per conv layer, with the best optimizer",
    parameters=tuple(Parameter(f"activation{i}", "categorical", ACTIVATIONS) for i in range(1, 5)),
    setting="activations",
    start=",".join(STUDY_ACTIVATIONS),
    study=StudyFigure(best=("selu", "relu", "relu", "relu"), accuracy=0.9337, index=67),
    after="optimizer",
))
FILTER_SWEEP = register(Sweep(
    name="filters",
    title="Question 2C: filters per conv layer",
    label="sweep C: filters",
    description="Question 2C: filters per conv layer, with the best optimizer and activations",
    parameters=tuple(Parameter(f"filters{i}", "discrete", tuple(map(str, FILTER_CHOICES))) for i in range(1, 5)),
    setting="filters",
    start=",".join(map(str, STUDY_FILTERS)),
    study=StudyFigure(best=("32", "64", "64", "64"), accuracy=0.9338, index=53),
    after="activations",
))
