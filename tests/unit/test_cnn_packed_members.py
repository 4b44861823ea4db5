"""Which trials share a pack (components/cnn/packed/members.py): no Keras, no JAX."""

from __future__ import annotations

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
