"""Packed trials: many CNN trials trained in one JAX program, each still its own Katib trial.

``members`` plans packs (no Keras or JAX import); ``program`` builds a pack's device program from
``build_study_cnn`` through Keras 3's stateless API (``padding``: members of other filter counts in
one program); ``records`` writes each member's own trial files; ``executor`` runs packs
(``run_packs``, ``run_pack``). Needs ``KERAS_BACKEND=jax``.
"""

from components.cnn.packed.members import Member, group_members, pack_key

__all__ = ["Member", "group_members", "pack_key"]
