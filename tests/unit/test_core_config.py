"""components.core.config: the one converter from profiles, flags and KFP inputs to typed settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from components.core.config import Rule, from_mapping, ruled, settings_problems
from components.core.errors import UserError
from components.core.rules import POSITIVE_INT, POSITIVE_NUMBER, one_of


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


@dataclass(frozen=True)
class Ruled:
    epochs: int = ruled(POSITIVE_INT, default=1)
    optimizer: str = ruled(one_of(("Adam", "SGD")), default="Adam")
    rate: float | None = ruled(POSITIVE_NUMBER.with_null("the default"), default=None)
    caps: dict = ruled(Rule("a count per stage", items=(int | None, POSITIVE_INT.with_null("all"))),
                       default_factory=dict)


def test_a_rule_says_one_phrase_for_a_wrong_type_and_a_wrong_value():
    # The phrase is the rule's in both cases: a profile's 'abc' and a flag's 0 read the same.
    with pytest.raises(UserError, match=r"^train\.epochs='abc': expected a positive integer$"):
        from_mapping(Ruled, {"epochs": "abc"}, section="train")
    with pytest.raises(UserError, match=r"^train\.epochs=0: expected a positive integer$"):
        from_mapping(Ruled, {"epochs": 0}, section="train")
    with pytest.raises(UserError, match=r"^rate=-1: expected a positive number or null \(the default\)$"):
        from_mapping(Ruled, {"rate": -1})
    with pytest.raises(UserError, match=r"^caps\.a=0: expected a positive integer or null \(all\)$"):
        from_mapping(Ruled, {"caps": {"a": 0}})


def test_a_rule_makes_values_canonical_and_items_typed():
    s = from_mapping(Ruled, {"optimizer": " sgd", "caps": {"a": 2.0, "b": None}, "rate": 1})
    assert (s.optimizer, s.caps, s.rate) == ("SGD", {"a": 2, "b": None}, 1.0)
    assert type(s.caps["a"]) is int


def test_settings_problems_lists_every_problem_and_every_missing_field():
    problems = settings_problems(Ruled, {"epochs": 0, "optimizer": "x", "speed": 1}, section="s")
    assert problems == [
        "s.speed: unknown setting; expected one of caps, epochs, optimizer, rate",
        "s.epochs=0: expected a positive integer",
        "s.optimizer='x': expected one of Adam, SGD",
        "s.rate: missing; expected a value",
        "s.caps: missing; expected a value",
    ]
    assert settings_problems(Ruled, [1], section="s") == ["s: expected a section of settings, got [1]"]
    assert settings_problems(Ruled, {}, section="s", required=False) == []


def test_the_per_layer_rule_names_the_first_bad_value_and_shows_a_comma_list_as_a_list():
    from components.cnn.hparams import TrialConfig

    with pytest.raises(UserError, match=r"^train\.filters=\['32', 'x'\]: expected 4 positive integer filter counts"):
        from_mapping(TrialConfig, {"filters": "32,x"}, section="train")
    with pytest.raises(UserError, match=r"^train\.activations=\['relu', 'relu'\]: expected 4 values, one per conv"):
        from_mapping(TrialConfig, {"activations": "relu,relu"}, section="train")
    assert from_mapping(TrialConfig, {"activations": "SELU,relu,relu,relu"}).activations[0] == "selu"
