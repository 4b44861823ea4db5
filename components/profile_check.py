"""The whole profile checked before any work starts: types, allowed values, ranges, one line per problem.

``study run``, ``study profile``, ``study sweep stage`` and ``katib generate`` all load their
profile through :func:`load_profile`, which calls :func:`profile_problems`,
so a bad ``--set`` value is refused before the data step, not inside the step that reads it.
The ``nas`` and ``transfer`` sections are checked by their own steps' settings classes, so the
rules live once, beside the code that uses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from components.cnn.hparams import KNOWN_ACTIVATIONS, NUM_CONV, OPTIMIZERS
from components.core.errors import UserError
from components.core.profiles import DEFAULT_PROFILE, read_profile

Problems = list[str]


def _is_int(value) -> bool:
    # A KFP struct carries numbers as floats: 3.0 is the integer 3.
    return (isinstance(value, int) and not isinstance(value, bool)) or \
        (isinstance(value, float) and value.is_integer())


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(low: int) -> Callable:
    def check(value) -> str | None:
        if not _is_int(value) or value < low:
            return f"expected {'a positive' if low == 1 else 'a non-negative' if low == 0 else 'an'} integer"
        return None
    return check


def _optional(check: Callable, meaning: str) -> Callable:
    def optional(value) -> str | None:
        problem = None if value is None else check(value)
        return problem and f"{problem} or null ({meaning})"
    return optional


def _fraction(value) -> str | None:
    return None if _is_number(value) and 0.0 < value < 1.0 else "expected a number between 0 and 1"


def _positive_number(value) -> str | None:
    return None if _is_number(value) and value > 0 else "expected a positive number"


def _boolean(value) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _text(value) -> str | None:
    return None if isinstance(value, str) and value.strip() else "expected a folder, gs:// or s3:// URI"


def _optimizer(value) -> str | None:
    if isinstance(value, str) and value.strip().lower() in {o.lower() for o in OPTIMIZERS}:
        return None
    return f"expected one of {', '.join(OPTIMIZERS)}"


def _per_layer(item: Callable, example: str) -> Callable:
    def check(value) -> str | None:
        if not isinstance(value, list) or len(value) != NUM_CONV:
            return f"expected {NUM_CONV} values, one per conv layer, e.g. {example}"
        bad = [v for v in value if item(v)]
        return item(bad[0]) if bad else None
    return check


def _activation(value) -> str | None:
    if isinstance(value, str) and value.strip().lower() in KNOWN_ACTIVATIONS:
        return None
    return f"{value!r} is not an activation; expected one of {', '.join(KNOWN_ACTIVATIONS)}"


def _filter_count(value) -> str | None:
    return None if _is_int(value) and value >= 1 else f"{value!r} is not a positive integer filter count"


RULES: dict[str, dict[str, Callable]] = {
    "data": {
        "source": _optional(_text, "Debian's package, else the download"),
        "train_size": _optional(_integer(1), "all 60,000"),
        "test_size": _optional(_integer(1), "all 10,000"),
        "val_fraction": _fraction,
        "seed": _integer(-(2 ** 63)),
    },
    "train": {
        "optimizer": _optimizer,
        "learning_rate": _optional(_positive_number, "the optimizer's default"),
        "activations": _per_layer(_activation, "[selu, relu, relu, relu]"),
        "filters": _per_layer(_filter_count, "[32, 64, 64, 64]"),
        "epochs": _integer(1),
        "batch_size": _integer(1),
        "seed": _integer(-(2 ** 63)),
        "bn_momentum": _fraction,
    },
    "sweeps": {
        "epochs": _integer(1),
        "batch_size": _integer(1),
        "seed": _integer(-(2 ** 63)),
        "bn_momentum": _fraction,
        "learning_rate": _optional(_positive_number, "the optimizer's default"),
        "parallel_trials": _integer(1),
        "local_parallel_trials": _integer(1),
        "max_failed_trials": _integer(0),
        "early_stopping": _boolean,
    },
}
# A stage's trial count: 0 would run nothing (and Katib would refuse it); null is the whole grid.
MAX_TRIALS = _optional(_integer(1), "the whole grid")


def _split_lists(section: dict) -> None:
    """``--set train.filters=32,64,64,64`` arrives as one string: make it the list it means."""
    for key in ("activations", "filters"):
        value = section.get(key)
        if isinstance(value, str) and "," in value:
            items = [v.strip() for v in value.split(",")]
            section[key] = [int(v) if key == "filters" and v.lstrip("-").isdigit() else v for v in items]


def _check_section(name: str, section, rules: dict[str, Callable], problems: Problems) -> None:
    if not isinstance(section, dict):
        problems.append(f"{name}: expected a section of settings, got {section!r}")
        return
    for key in sorted(set(rules) - set(section)):
        problems.append(f"{name}.{key}: missing (settings: {', '.join(rules)})")
    for key, check in rules.items():
        if key in section:
            problem = check(section[key])
            if problem:
                problems.append(f"{name}.{key}={section[key]!r}: {problem}")


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
    """Every problem of a profile (already overridden), one line each; normalises comma lists in place."""
    problems: Problems = []
    if isinstance(profile.get("train"), dict):
        _split_lists(profile["train"])
    for name, rules in RULES.items():
        _check_section(name, profile.get(name), rules, problems)
    max_trials = (profile.get("sweeps") or {}).get("max_trials") if isinstance(profile.get("sweeps"), dict) else None
    if not isinstance(max_trials, dict):
        problems.append(f"sweeps.max_trials={max_trials!r}: expected a count per stage, e.g. {{optimizer: 8}}")
    else:
        for stage, value in max_trials.items():
            problem = MAX_TRIALS(value)
            if problem:
                problems.append(f"sweeps.max_trials.{stage}={value!r}: {problem}")
    if isinstance(profile.get("nas"), dict):
        _step_settings("nas", lambda: _nas(profile["nas"]), problems)
    if isinstance(profile.get("transfer"), dict):
        _step_settings("transfer", lambda: _transfer(profile["transfer"]), problems)
    return problems


def load_profile(name: str = DEFAULT_PROFILE, overrides: list[str] | tuple = ()) -> dict:
    """The profile with its overrides applied, checked whole: every problem, one line each, before any work."""
    profile = read_profile(name, overrides)
    problems = profile_problems({k: v for k, v in profile.items() if k != "name"})
    if problems:
        raise UserError("\n".join(f"profile {name}: {p}" for p in problems))
    return profile
