"""Which trials share a pack (components/cnn/packed/members.py): no Keras, no JAX."""

from __future__ import annotations

import pytest

from components.cnn.hparams import TrialConfig
from components.cnn.packed.members import Member, group_members, pack_key


def _member(name: str, **config) -> Member:
    return Member(name, TrialConfig(**config), f"/out/{name}")


def test_sweep_b_is_one_pack_and_sweep_c_one_pack_per_shape():
    b = [_member(f"b{i}", activations=(a, "relu", "selu", "elu")) for i, a in enumerate(("elu", "relu", "selu"))]
    assert [[m.name for m in pack] for pack in group_members(b)] == [["b0", "b1", "b2"]]
    c = [_member(f"c{i}", filters=f) for i, f in enumerate([(32, 32, 64, 64), (16, 32, 64, 64), (32, 32, 64, 64)])]
    assert [[m.name for m in pack] for pack in group_members(c)] == [["c0", "c2"], ["c1"]]


def test_sweep_a_packs_by_optimizer_and_seeds_and_epochs_may_differ():
    a = [_member("adam", optimizer="adam"), _member("sgd", optimizer="SGD"), _member("adam2", optimizer="Adam", seed=2,
                                                                                       epochs=3)]
    packs = group_members(a)
    assert [[m.name for m in pack] for pack in packs] == [["adam", "adam2"], ["sgd"]]
    assert packs[0][0].config.optimizer == "Adam"  # normalized
    assert pack_key(packs[0][0].config) == pack_key(packs[0][1].config)
    assert pack_key(TrialConfig(batch_size=64)) != pack_key(TrialConfig())


def test_a_pack_has_at_most_max_members():
    members = [_member(f"m{i}", seed=i) for i in range(5)]
    assert [len(p) for p in group_members(members, max_members=2)] == [2, 2, 1]


def test_the_pack_key_is_named_trial_settings_and_train_images_is_one():
    from dataclasses import fields

    from components.cnn.packed.members import PACK_KEY_SETTINGS

    assert set(PACK_KEY_SETTINGS) <= {f.name for f in fields(TrialConfig)}
    # A pack trains every member one epoch a round: members of other training-set sizes cannot share it.
    assert pack_key(TrialConfig(train_images=2700)) != pack_key(TrialConfig())
    assert pack_key(TrialConfig(seed=2, epochs=3, activations=("elu",) * 4)) == pack_key(TrialConfig())


def test_only_a_sweep_whose_trials_share_one_program_trains_in_packs():
    """sweeps.local_pack_slots packs sweep B (activations vary inside a pack); sweep A's optimizers and
    C's filters are pack keys, so each trial would be a pack of one: those run one process per trial."""
    from components.core.config import from_mapping
    from components.core.profiles import read_profile
    from components.sweeps import SweepSettings
    from katib.sweep import stage_pack_slots

    def settings(**extra):
        return from_mapping(SweepSettings, {**read_profile("smoke")["sweeps"], **extra}, section="sweeps")

    said: list[str] = []
    assert stage_pack_slots("activations", settings(local_pack_slots=4), said.append) == 4 and said == []
    assert stage_pack_slots("optimizer", settings(local_pack_slots=4), said.append) is None
    assert stage_pack_slots("filters", settings(local_pack_slots=4), said.append) is None
    assert "its trials differ in optimizer" in said[0] and "its trials differ in filters" in said[1]
    assert "sweeps.local_pack_pad_filters pads C's" in said[1]
    assert stage_pack_slots("activations", settings(), said.append) is None and len(said) == 2
    # Padded, C's trials share programs (test_cnn_pack_server.py trains them so); A's still cannot.
    padded = settings(local_pack_slots=4, local_pack_pad_filters="4,3")
    assert padded.local_pack_pad_filters == (3, 4)
    assert settings(local_pack_pad_filters=4).local_pack_pad_filters == (4,)  # --set's one number: one layer
    assert stage_pack_slots("filters", padded, said.append) == 4 and "conv layer(s) 3,4" in said[2]
    assert stage_pack_slots("optimizer", padded, said.append) is None
    assert stage_pack_slots("filters", settings(local_pack_pad_filters="3,4"), said.append) is None  # no slots


@pytest.mark.parametrize("value", ["0,3", "3,3", "5", "conv3", "[]"])
def test_pad_filters_outside_the_conv_layers_are_refused_in_one_line(value):
    from components.core.config import from_mapping
    from components.core.errors import UserError
    from components.core.profiles import read_profile
    from components.sweeps import SweepSettings

    sweeps = read_profile("smoke", [f"sweeps.local_pack_pad_filters={value}"])["sweeps"]
    with pytest.raises(UserError) as refused:
        from_mapping(SweepSettings, sweeps, section="sweeps")
    assert str(refused.value).startswith("sweeps.local_pack_pad_filters=")
    assert "expected conv layer numbers from 1 to 4, each once" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_packs_spread_over_the_workers_in_near_equal_parts():
    """Sweep B is one pack key: with 4 workers it must still become 4 packs, or 3 workers idle beside one
    program that trains the 81 members a slot-full at a time (gpu_session.sh's plan before this test)."""
    b = [_member(f"b{i}", seed=i) for i in range(81)]
    assert [len(p) for p in group_members(b, spread=4)] == [21, 20, 20, 20]
    assert [m.name for p in group_members(b, spread=4) for m in p] == [m.name for m in b]  # first-seen order
    assert [len(p) for p in group_members(b, max_members=12, spread=4)] == [12, 12, 12, 12, 11, 11, 11]
    # Enough pack keys already: nothing splits. Too few members: a pack of one each, no empty pack.
    a = [_member(f"a{i}", optimizer=o) for i, o in enumerate(("Adam", "SGD", "Nadam"))] + [_member("a3", seed=2)]
    assert [[m.name for m in p] for p in group_members(a, spread=3)] == [["a0", "a3"], ["a1"], ["a2"]]
    assert [[m.name for m in p] for p in group_members(a, spread=4)] == [["a0"], ["a3"], ["a1"], ["a2"]]
    assert [len(p) for p in group_members(b[:3], spread=8)] == [1, 1, 1]


def test_padding_conv3_and_conv4_makes_sweep_c_nine_packs_of_nine():
    """Sweep C's 81 shapes are 81 programs; with conv3 and conv4 padded (members.py's docstring) they are
    9, one per (conv1, conv2) pair, each running 64 filters in conv3 and conv4."""
    import itertools

    from bench.flops import padding_waste
    from components.cnn.packed.members import program_filters

    grid = [_member(f"c{i}", filters=f) for i, f in enumerate(itertools.product((16, 32, 64), repeat=4))]
    packs = group_members(grid, pad_layers=(4, 3))
    assert len(packs) == 9 and all(len(p) == 9 for p in packs)
    for pack in packs:
        assert len({m.config.filters[:2] for m in pack}) == 1
        assert program_filters([m.config for m in pack], (3, 4)) == (*pack[0].config.filters[:2], 64, 64)
    assert len(group_members(grid)) == 81  # nothing padded: one pack per shape
    # The FLOPs the docstring gives: 1.22 times the grid's own for conv3 and conv4, 2.82 for every layer.
    configs = [m.config for m in grid]
    assert round(padding_waste(configs, (3, 4)), 2) == 1.22 and round(padding_waste(configs, (1, 2, 3, 4)), 2) == 2.82
    assert padding_waste(configs, ()) == 1.0
    # Members that differ elsewhere than the padded layers do not share a program.
    with pytest.raises(ValueError, match="one pack key"):
        program_filters([TrialConfig(filters=(16, 32, 64, 64)), TrialConfig(filters=(32, 32, 64, 64))], (3, 4))


def test_pad_layers_are_conv_layer_numbers():
    from components.cnn.packed.members import check_pad_layers
    from components.core.errors import UserError

    assert check_pad_layers([4, 3, 3]) == (3, 4)
    with pytest.raises(UserError, match=r"pad layers 0,5: expected conv layer numbers 1 to 4"):
        check_pad_layers([0, 3, 5])
