"""components.core.config: the one converter from profiles, flags and KFP inputs to typed settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from components.core.config import from_mapping
from components.core.errors import UserError


@dataclass(frozen=True)
class Inner:
    rate: float
    steps: int = 1


@dataclass(frozen=True)
class Settings:
    epochs: int
    name: str = "x"
    size: int | None = None
    filters: tuple[int, ...] = (1, 2)
    names: tuple[str, ...] = ()
    early: bool = False
    extra: dict | None = None
    inner: Inner | None = None


def test_kfp_floats_become_ints_and_ints_become_floats():
    # KFP returns a dict parameter's numbers as doubles (protobuf Struct); the study's YAML has ints.
    s = from_mapping(Settings, {"epochs": 3.0, "size": 2.0, "inner": {"rate": 1, "steps": 4.0}})
    assert (s.epochs, s.size, s.inner) == (3, 2, Inner(rate=1.0, steps=4))
    assert type(s.epochs) is int and type(s.inner.rate) is float


def test_tuples_from_lists_and_comma_text():
    assert from_mapping(Settings, {"epochs": 1, "filters": [16, 32.0]}).filters == (16, 32)
    assert from_mapping(Settings, {"epochs": 1, "filters": "16, 32,64"}).filters == (16, 32, 64)
    assert from_mapping(Settings, {"epochs": 1, "names": "selu,relu"}).names == ("selu", "relu")


def test_defaults_fill_missing_keys_and_none_only_where_allowed():
    s = from_mapping(Settings, {"epochs": 2})
    assert (s.name, s.size, s.filters, s.early) == ("x", None, (1, 2), False)
    assert from_mapping(Settings, {"epochs": 2, "size": None}).size is None


@pytest.mark.parametrize("data, message", [
    ({"epochs": 2, "epoch": 3}, "train.epoch: unknown setting; expected one of "),
    ({}, "train.epochs: missing"),
    ({"epochs": 2.5}, "train.epochs=2.5: expected an integer"),
    ({"epochs": True}, "train.epochs=True: expected an integer"),
    ({"epochs": "3"}, "train.epochs='3': expected an integer"),
    ({"epochs": None}, "train.epochs=null: expected"),
    ({"epochs": 1, "early": 1}, "train.early=1: expected true or false"),
    ({"epochs": 1, "filters": "16,x"}, "train.filters='x': expected an integer"),
    ({"epochs": 1, "name": 3}, "train.name=3: expected a string"),
    ({"epochs": 1, "inner": {"rate": 1, "speed": 2}}, "train.inner.speed: unknown setting"),
    ({"epochs": 1, "extra": [1]}, "train.extra=[1]: expected a mapping"),
])
def test_bad_values_are_one_line_naming_the_key(data, message):
    with pytest.raises(UserError) as err:
        from_mapping(Settings, data, section="train")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
