"""Typed settings: one converter from profiles, CLI flags and KFP inputs to dataclasses.

Every step's settings are a dataclass. :func:`from_mapping` builds one from a mapping (a profile
section, a KFP ``dict`` input, parsed flags): a key the dataclass lacks is refused, and values are
coerced by the field's type. The coercions are the ones the three sources need:

- KFP hands a pipeline's ``int`` inside a ``dict`` parameter back as a float (``2`` arrives as
  ``2.0``, protobuf's Struct has only doubles), so an integral float is an int and ``2.5`` is refused;
- an int is a float;
- a tuple field takes a list (YAML, JSON) or a comma-separated string (a flag, ``--set``);
- ``None`` only where the field's type allows it.

A bad value raises :class:`UserError` with one line naming ``section.key``, the value and what was
expected, before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from components.core.errors import UserError

T = TypeVar("T")


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, *, section: str = "") -> T:
    """``cls(**data)`` with unknown keys refused and every value coerced to its field's type.

    A field missing from ``data`` takes the dataclass default; one without a default is an error.
    """
    data = dict(data or {})
    where = f"{section}." if section else ""
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"{where}{unknown[0]}: unknown setting; expected one of {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in known.items():
        if name in data:
            values[name] = coerce(data[name], hints[name], f"{where}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where}{name}: missing; expected a value")
    return cls(**values)


def coerce(value: Any, annotation: Any, name: str) -> Any:
    """``value`` as ``annotation`` says, or a UserError naming ``name``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise UserError(f"{name}=null: expected a value")
        options = [a for a in args if a is not type(None)]
        problems = []
        for option in options:
            try:
                return coerce(value, option, name)
            except UserError as err:
                problems.append(err)
        raise problems[0]
    if annotation is Any:
        return value
    if value is None:
        raise UserError(f"{name}=null: expected {_expected(annotation)}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{name}={value!r}: expected true or false")
    if annotation is int:
        return _as_int(value, name)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{name}={value!r}: expected a number")
        return float(value)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{name}={value!r}: expected a string")
    if origin is tuple:
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise UserError(f"{name}={value!r}: expected a list")
        item_type = args[0] if args else Any
        if item_type is int:
            items = [_text_int(v, name) if isinstance(v, str) else v for v in items]
        return tuple(coerce(v, item_type, name) for v in items)
    if origin is dict or annotation is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise UserError(f"{name}={value!r}: expected a mapping")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if isinstance(value, Mapping):
            return from_mapping(annotation, value, section=name)
        raise UserError(f"{name}={value!r}: expected a mapping")
    raise TypeError(f"{name}: the converter does not know type {annotation!r}")  # a programming error


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise UserError(f"{name}={value!r}: expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)  # KFP's dict parameters carry every number as a double
    raise UserError(f"{name}={value!r}: expected an integer")


def _text_int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name}={text!r}: expected an integer") from None


def _expected(annotation: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(annotation, "a value")
