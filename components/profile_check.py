"""The whole profile checked before any work starts: types, allowed values, ranges, one line per problem.

``study run``, ``study profile``, ``study sweep stage`` and ``katib generate`` all load their
profile through :func:`load_profile`, which calls :func:`profile_problems`,
so a bad ``--set`` value is refused before the data step, not inside the step that reads it.
The ``nas`` and ``transfer`` sections are checked by their own steps' settings classes, so the
rules live once, beside the code that uses them.
"""

from __future__ import annotations

from collections.abc import Callable

from components.cnn.hparams import TrialConfig
from components.core.config import checked_section
from components.core.errors import UserError
from components.core.profiles import DEFAULT_PROFILE, read_profile
from components.data import DataSettings
from components.sweeps import SweepSettings

Problems = list[str]
# The sections whose settings class is a rule-carrying dataclass: the profile states every field.
SECTIONS: dict[str, type] = {"data": DataSettings, "train": TrialConfig, "sweeps": SweepSettings}


def _step_settings(name: str, build: Callable[[], object], problems: Problems) -> None:
    """A section that a step's own settings class checks: its first problem, as one line."""
    try:
        build()
    except UserError as err:
        problems.append(f"{name}: {err}")
    except (TypeError, ValueError) as err:  # a value of the wrong type, met by a comparison
        problems.append(f"{name}: a value of the wrong type ({err})")


def _nas(section: dict) -> None:
    from components.nas.config import NasConfig

    NasConfig.from_dict(section).normalized()


def _transfer(section: dict) -> None:
    from components.transfer.bases import BASES
    from components.transfer.settings import settings_from_profile

    # Every defined base (the pipeline runs each), and any the profile names (an unknown one is refused).
    named = list(section["bases"]) if isinstance(section.get("bases"), dict) else []
    for base in [*BASES, *(b for b in named if b not in BASES)]:
        settings_from_profile(section, base).checked()


def profile_problems(profile: dict) -> Problems:
    """Every problem of a profile (already overridden), one line each; the sections' values are
    made canonical in place (comma lists as lists, an optimizer's spelling)."""
    problems: Problems = []
    for name, cls in SECTIONS.items():
        values, section_problems = checked_section(cls, profile.get(name), section=name)
        problems += section_problems
        if not section_problems:  # every field given and typed: the section's canonical values
            profile[name] = _plain(values)
    if isinstance(profile.get("nas"), dict):
        _step_settings("nas", lambda: _nas(profile["nas"]), problems)
    if isinstance(profile.get("transfer"), dict):
        _step_settings("transfer", lambda: _transfer(profile["transfer"]), problems)
    return problems


def _plain(values: dict) -> dict:
    """Tuples as lists: a profile is YAML/JSON data (``study profile`` prints it)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def load_profile(name: str = DEFAULT_PROFILE, overrides: list[str] | tuple = ()) -> dict:
    """The profile with its overrides applied, checked whole: every problem, one line each, before any work."""
    profile = read_profile(name, overrides)
    sections = {k: v for k, v in profile.items() if k != "name"}
    problems = profile_problems(sections)
    if problems:
        raise UserError("\n".join(f"profile {name}: {p}" for p in problems))
    return {**sections, "name": profile["name"]}
