"""Name/value settings lists (algorithmSettings, earlyStopping's algorithmSettings) and their checks.

Katib's Go types hold each setting's value as a string, so a YAML number fails
the JSON decoder in front of the webhook. Each suggestion or early stopping
service then parses the strings it knows and rejects any name it does not: the
tables of :class:`SettingCheck` in the service modules say which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from katib.validate.values import Problems, show, to_float, to_int

# A setting check returns what was expected when the value is bad, None when fine.
SettingCheck = Callable[[str], "str | None"]


def read_settings(path: str, raw: Any) -> tuple[dict[str, str], Problems]:
    """Read a name/value settings list; values must be strings in Katib's Go types."""
    if raw is None:
        return {}, []
    if not isinstance(raw, list):
        return {}, [f"{path}: {show(raw)}; expected a list of name/value settings"]
    settings: dict[str, str] = {}
    problems: Problems = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            problems.append(f"{path}[{i}]: {show(item)}; expected a mapping with a name and a value")
            continue
        value = item.get("value")
        if not isinstance(value, str):
            problems.append(
                f"{path}[{i}] ({item['name']}): value {show(value)} is not a string; "
                f"Katib decodes setting values as strings, quote it"
            )
            continue
        settings[item["name"]] = value
    return settings, problems


def check_known_settings(
    path: str, algorithm: str, settings: dict[str, str], rules: dict[str, SettingCheck]
) -> Problems:
    """Every setting is one the service knows, with a value it accepts."""
    problems: Problems = []
    for name, value in settings.items():
        if name not in rules:
            problems.append(
                f"{path} ({name}): unknown setting for {algorithm}; expected one of {', '.join(rules)}"
            )
            continue
        expected = rules[name](value)
        if expected:
            problems.append(f"{path} ({name}): {show(value)}; expected {expected}")
    return problems


def int_at_least(low: int) -> SettingCheck:
    def check(value: str) -> str | None:
        number = to_int(value)
        return None if number is not None and number >= low else f"an integer >= {low}"
    return check


def float_check(test: Callable[[float], bool], expected: str) -> SettingCheck:
    def check(value: str) -> str | None:
        number = to_float(value)
        return None if number is not None and test(number) else expected
    return check


def one_of(*choices: str) -> SettingCheck:
    def check(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)
    return check


# Every Python service reads random_state with int() and wants it >= 0.
RANDOM_STATE = int_at_least(0)
