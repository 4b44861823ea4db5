"""Reading and showing the values of an Experiment held as a plain dict (as loaded from YAML).

Katib's Go types decide what a value may be: counts are integers, bounds and
setting values are strings that the services parse later. These helpers read a
value the way Go or the services would, and show a bad one in a message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# One line per problem, each naming the field path, the bad value and what was expected.
Problems = list[str]

_INT_TEXT_RE = re.compile(r"[+-]?\d+")
_FLOAT_TEXT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_int(value: Any) -> int | None:
    """An integer from a YAML int or an integer string ("12"), as Go's Atoi reads it."""
    if is_int(value):
        return value
    if isinstance(value, str) and _INT_TEXT_RE.fullmatch(value):
        return int(value)
    return None


def to_float(value: Any) -> float | None:
    """A finite number from a YAML number or a decimal string ("1e-3"); None otherwise."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT_RE.fullmatch(value):
        return float(value)
    return None


def is_absolute(path: Any) -> bool:
    return isinstance(path, str) and path.startswith("/")


def show(value: Any, limit: int = 80) -> str:
    """A short one-line rendering of a value for a message."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        text = "'" + value.replace("\r", "\\r").replace("\n", "\\n") + "'"
    else:
        text = " ".join(json.dumps(value, default=str, ensure_ascii=False).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: Any) -> str:
    return {list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def one_line(text: str) -> str:
    return " ".join(text.split())


def parameter_list(spec: dict) -> list:
    """spec.parameters when it is a list (its shape is reported by the parameters check)."""
    parameters = spec.get("parameters")
    return parameters if isinstance(parameters, list) else []


def experiment_name(experiment: Any) -> str:
    metadata = experiment.get("metadata") if isinstance(experiment, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else "(unnamed)"
