"""Typed settings: one converter from profiles, CLI flags and KFP inputs to dataclasses.

Every step's settings are a dataclass. :func:`from_mapping` builds one from a mapping (a profile
section, a KFP ``dict`` input, parsed flags): a key the dataclass lacks is refused, and values are
coerced by the field's type. The coercions are the ones the three sources need:

- KFP hands a pipeline's ``int`` inside a ``dict`` parameter back as a float (``2`` arrives as
  ``2.0``, protobuf's Struct has only doubles), so an integral float is an int and ``2.5`` is refused;
- an int is a float;
- a tuple field takes a list (YAML, JSON) or a comma-separated string (a flag, ``--set``);
- ``None`` only where the field's type allows it.

A field may also carry a :class:`Rule` (``ruled(...)``): what its value must be beyond its type (a
positive integer, one of some names, four per-layer values), said once, so that a profile's ``--set``,
a ``study`` flag and a KFP input that break it get the same message. Every message is one line,
``section.key=value: expected ...``. :func:`settings_problems` lists every problem of a mapping at
once (the whole-profile check); :func:`from_mapping` raises the first as a :class:`UserError`,
before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from components.core.errors import UserError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field's value must be beyond its type, as the one phrase every message about it uses.

    ``expected`` completes "expected ..." (also when the value has the wrong type); ``accepts`` tests
    the typed value; ``problem``, where given, says more precisely what is wrong (e.g. which of four
    per-layer values); ``canonical`` rewrites an accepted value (e.g. an optimizer's spelling);
    ``null`` is what null means, for a field whose type allows it; ``items`` checks each value of a
    mapping field, as ``(type, rule)``, naming it ``field.key``.
    """

    expected: str
    accepts: Callable[[Any], bool] = lambda value: True
    problem: Callable[[Any], str | None] | None = None
    canonical: Callable[[Any], Any] | None = None
    null: str = ""
    items: tuple[Any, Rule] | None = None

    def with_null(self, meaning: str) -> Rule:
        return dataclasses.replace(self, null=meaning)


def ruled(rule: Rule, **field_args) -> Any:
    """A dataclass field checked by ``rule`` (``field_args`` as for :func:`dataclasses.field`)."""
    return dataclasses.field(metadata={"rule": rule}, **field_args)


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, *, section: str = "") -> T:
    """``cls(**data)`` with unknown keys refused and every value coerced to its field's type and rule.

    A field missing from ``data`` takes the dataclass default; one without a default is an error.
    """
    values, problems = _convert(cls, data, section, required=False)
    if problems:
        raise UserError(problems[0])
    return cls(**values)


def settings_problems(cls: type, data: Any, *, section: str, required: bool = True) -> list[str]:
    """Every problem of ``data`` as settings of ``cls``, one line each; ``required``: every field
    must be given (a profile states them all), not taken from the dataclass default."""
    return checked_section(cls, data, section=section, required=required)[1]


def checked_section(cls: type, data: Any, *, section: str, required: bool = True) -> tuple[dict, list[str]]:
    """``data``'s typed, canonical values as settings of ``cls``, and every problem (as
    :func:`settings_problems`): one pass gives both."""
    if not isinstance(data, Mapping):
        return {}, [f"{section}: expected a section of settings, got {data!r}"]
    return _convert(cls, data, section, required=required)


def _convert(cls: type, data: Mapping[str, Any] | None, section: str, *, required: bool) -> tuple[dict, list[str]]:
    data = dict(data or {})
    where = f"{section}." if section else ""
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    problems = [f"{where}{name}: unknown setting; expected one of {', '.join(sorted(known))}"
                for name in sorted(set(data) - set(known))]
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in known.items():
        if name in data:
            try:
                values[name] = _checked(data[name], hints[name], f"{where}{name}", f.metadata.get("rule"))
            except UserError as err:
                problems.append(str(err))
        elif required or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING):
            problems.append(f"{where}{name}: missing; expected a value")
    return values, problems


def _checked(value: Any, annotation: Any, name: str, rule: Rule | None) -> Any:
    """``value`` coerced to ``annotation`` and held to ``rule``: the rule's words in every message."""
    if rule is None:
        return coerce(value, annotation, name)
    shown = _split(value) if isinstance(value, str) and typing.get_origin(annotation) is tuple else value
    nullable = type(None) in typing.get_args(annotation)
    expected = f"expected {rule.expected}" + (f" or null ({rule.null})" if nullable and rule.null else "")
    if value is None and nullable:
        return None
    try:
        typed = coerce(value, annotation, name)
    except UserError:
        raise UserError(f"{name}={shown!r}: {expected}") from None
    if rule.items is not None:
        item_type, item_rule = rule.items
        typed = {key: _checked(item, item_type, f"{name}.{key}", item_rule) for key, item in typed.items()}
    problem = rule.problem(typed) if rule.problem else None
    if problem is None and not rule.accepts(typed):
        problem = expected
    if problem:
        raise UserError(f"{name}={shown!r}: {problem}")
    return rule.canonical(typed) if rule.canonical else typed


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
        items = _split(value) if isinstance(value, str) else value
        if isinstance(items, int | float) and not isinstance(items, bool):
            items = [items]  # --set's one number, e.g. sweeps.local_pack_pad_filters=4
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


def _split(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


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
