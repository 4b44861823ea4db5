"""Which trials may share one device program: a pack's members and how they are grouped.

No Keras or JAX import here, so a driver can plan packs before choosing a backend.

Members of one pack run the same compiled program under ``jax.vmap``, so they must share every
setting that changes the program's shapes or its update rule:

* ``filters`` (the conv layers' shapes): sweep C's 81 grid points are 81 shapes, so 81 packs
  of one member, 81 programs to compile. ``pad_layers`` lets members differ in the named conv
  layers: each such layer is padded to the pack's largest count, its extra channels held at zero
  by masks, so a member still trains exactly its own network, dropout masks included (see
  ``padding.py``). The padded channels' FLOPs are wasted: padding every layer would make the grid
  one program at 2.82 times its own FLOPs (16.2 against 5.73 GFLOP per image's forward pass,
  summed over the grid; ``bench.flops``), but padding conv3 and conv4 only makes it 9 programs of
  9 members (one per conv1, conv2 pair) at 1.22 times (``bench.flops.padding_waste``): the fewest
  FLOPs of the six pairs of layers to pad (the others cost 1.65 to 2.56 times), and of any split
  of each layer's counts into groups that makes 9 programs.
* the optimizer and its learning rate: each optimizer has its own variables and update rule
  (sweep A: one pack per optimizer). Members of one optimizer share one ``stateless_apply``.
* ``batch_size`` (the step's shape), ``bn_momentum`` (a constant of the program) and
  ``train_images`` (the steps of an epoch: a round trains every member one epoch).

Activations (sweep B) and the random seed may differ inside a pack: the activation is chosen per
member inside the program (see ``program.py``), and each member has its own seed-derived weights
and image order. ``epochs`` may differ too: a member that has run its epochs leaves the pack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from components.cnn.hparams import NUM_CONV, TrialConfig
from components.core.errors import UserError


@dataclass(frozen=True)
class Member:
    """One Katib trial inside a pack: its name, settings and its own output location."""

    name: str
    config: TrialConfig
    output: str

    def normalized(self) -> Member:
        return Member(self.name, self.config.normalized(), self.output)


# The TrialConfig fields every member of one pack shares (see the module docstring).
PACK_KEY_SETTINGS = ("filters", "optimizer", "learning_rate", "batch_size", "bn_momentum", "train_images")


def check_pad_layers(pad_layers: Iterable[int]) -> tuple[int, ...]:
    """``pad_layers`` as sorted conv layer numbers (1 to ``NUM_CONV``), or a ``UserError``."""
    layers = tuple(sorted(set(pad_layers)))
    bad = [n for n in layers if not 1 <= n <= NUM_CONV]
    if bad:
        raise UserError(f"pad layers {','.join(map(str, bad))}: expected conv layer numbers 1 to {NUM_CONV}")
    return layers


def pack_key(config: TrialConfig, pad_layers: Iterable[int] = ()) -> tuple:
    """The settings every member of one pack shares (see the module docstring); the filter counts of
    ``pad_layers`` (conv layer numbers from 1) may differ."""
    padded = check_pad_layers(pad_layers)
    filters = tuple(None if n + 1 in padded else f for n, f in enumerate(config.filters))
    return tuple(filters if name == "filters" else tuple(v) if isinstance(v, list | tuple) else v
                 for name, v in ((name, getattr(config, name)) for name in PACK_KEY_SETTINGS))


def program_filters(configs: Iterable[TrialConfig], pad_layers: Iterable[int] = ()) -> tuple[int, ...]:
    """The filters of the program that trains ``configs`` (one pack key): each layer's largest count."""
    configs = list(configs)
    if len({pack_key(c, pad_layers) for c in configs}) != 1:
        raise ValueError("the members of one program must share one pack key")
    return tuple(max(counts) for counts in zip(*(c.filters for c in configs)))


def group_members(members: Iterable[Member], max_members: int | None = None, spread: int = 1,
                  pad_layers: Iterable[int] = ()) -> list[list[Member]]:
    """Packs of members that can share one program, in first-seen order; at most ``max_members`` each.

    ``spread`` asks for at least that many packs (the worker processes that will train them), where
    there are members enough: the packs with the most members per pack split further, a group's packs
    staying near-equal (their sizes differ by at most one). Without it sweep B, one pack key, would be
    one program on one worker while the others idle.
    """
    groups: dict[tuple, list[Member]] = {}
    for member in members:
        member = member.normalized()
        groups.setdefault(pack_key(member.config, pad_layers), []).append(member)
    sized = list(groups.values())
    parts = [math.ceil(len(g) / max_members) if max_members else 1 for g in sized]
    while sum(parts) < spread:
        splittable = [i for i, g in enumerate(sized) if parts[i] < len(g)]
        if not splittable:
            break
        widest = max(splittable, key=lambda i: (math.ceil(len(sized[i]) / parts[i]), -i))
        parts[widest] += 1
    packs = []
    for group, n in zip(sized, parts):
        size, extra = divmod(len(group), n)
        start = 0
        for k in range(n):
            end = start + size + (k < extra)
            packs.append(group[start:end])
            start = end
    return packs
