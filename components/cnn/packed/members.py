"""Which trials may share one device program: a pack's members and how they are grouped.

No Keras or JAX import here, so a driver can plan packs before choosing a backend.

Members of one pack run the same compiled program under ``jax.vmap``, so they must share every
setting that changes the program's shapes or its update rule:

* ``filters`` (the conv layers' shapes): sweep C's 81 grid points are 81 shapes, so 81 packs
  of one member. Padding every shape to the largest (64 filters each) with masked channels would
  pack them into one program, at the price of the padded FLOPs: 2.82 times the 81 shapes' own
  (16.2 against 5.73 GFLOP per image's forward pass, summed over the grid; ``bench.flops``), so
  65% of the padded program's work would be wasted, 92% for the smallest shape (15.1 against
  199.5 MFLOP). And it would not train what ``study train`` trains: ``drop1`` and
  ``drop2`` draw their masks over every channel, so a padded member's dropout stream (and with it
  every step after the first) differs from its own model's. Running the 81 small programs side by
  side (packs spread over worker processes, under MPS on a GPU) keeps each member exact; grouping
  by shape is what is built.
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

from components.cnn.hparams import TrialConfig


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


def pack_key(config: TrialConfig) -> tuple:
    """The settings every member of one pack shares (see the module docstring)."""
    return tuple(tuple(v) if isinstance(v, list | tuple) else v
                 for v in (getattr(config, name) for name in PACK_KEY_SETTINGS))


def group_members(members: Iterable[Member], max_members: int | None = None, spread: int = 1) -> list[list[Member]]:
    """Packs of members that can share one program, in first-seen order; at most ``max_members`` each.

    ``spread`` asks for at least that many packs (the worker processes that will train them), where
    there are members enough: the packs with the most members per pack split further, a group's packs
    staying near-equal (their sizes differ by at most one). Without it sweep B, one pack key, would be
    one program on one worker while the others idle.
    """
    groups: dict[tuple, list[Member]] = {}
    for member in members:
        member = member.normalized()
        groups.setdefault(pack_key(member.config), []).append(member)
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
