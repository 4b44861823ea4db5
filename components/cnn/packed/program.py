"""One pack's device program, built from the study's Keras model with Keras 3's stateless API under JAX.

The network is ``build_study_cnn``'s, called through ``model.stateless_call``; the update is the
Keras optimizer's own, through ``optimizer.stateless_apply``; the loss is Keras'
``sparse_categorical_crossentropy``. So a member trains exactly what ``study train`` trains (the
same layers, initialisation, dropout streams and update rule); only the loop around them is new:

* ``jax.vmap`` runs the members side by side over stacked variables (one leading axis, one
  member per row): one program, one kernel launch per layer for the whole pack.
* ``jax.lax.scan`` runs a whole epoch's steps in one dispatch; the images stay on the device
  and each member's batch is gathered there from its own order, so no step goes back to the host.
  A last partial batch (as ``fit`` has when the batch size does not divide the images) is one
  more dispatch of the same step at its own shape.

How the members are laid side by side (``lowering``): ``vmap`` batches every layer over the
members, so each convolution becomes one grouped convolution (``feature_group_count`` = members);
``unroll`` traces each member's step on its own, one after another in the same program, so each
convolution keeps its plain shape. XLA's CPU backend runs grouped convolutions far more slowly
than plain ones: on the project's 2-core machine four vmapped members trained 49 images/s, four
unrolled 319 (one alone 265). ``auto`` is ``vmap`` on an accelerator (cuDNN runs grouped
convolutions natively) and ``unroll`` on the CPU; both compute the same thing, and the GPU study
measures each (``--pack-lowering``).

The same goes for the epoch's loop: in a ``lax.scan`` (an XLA while loop) XLA's CPU backend ran the
study's training step 25 times more slowly than the same step dispatched once per batch (12.9
against 318.6 images/s, four unrolled members; bench/results/2026-12-01-amd-epyc-2c-pack-layout.md).
So on the CPU (``auto``) the epoch is a host loop of one compiled step per batch, the images still
on the device and only each step's batch indices sent; on an accelerator it is the one scan
(``--epoch-loop``).

Activations per member (sweep B): the template model's conv ``Activation`` layers get a function
that calls ``jax.lax.switch`` on the member's activation code. Under ``vmap`` with a batched code,
JAX lowers the switch to a select over every branch's output: each candidate activation is
computed and the member's own is picked element by element, which is exact (a select, not a
weighted mix, so no rounding and no 0 * inf) and costs a few elementwise passes beside the
convolutions. Layers where every member has the same activation keep Keras' own function.

Filter counts per member (sweep C, with ``pad_layers``): the program runs each padded layer's
largest count, and a member's variables go in padded and come out cut back (``padding.py``); its
dropout masks are drawn over its own channels, chosen per member as the activations are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from components.cnn.hparams import NUM_CONV, TrialConfig
from components.cnn.models import build_study_cnn, param_counts
from components.cnn.packed.members import check_pad_layers, program_filters
from components.cnn.packed.padding import PaddedDropout, Padding, dropout_widths
from components.cnn.train import make_optimizer
from components.core.errors import UserError

CONV_ACTIVATION_LAYERS = tuple(f"act{i + 1}" for i in range(NUM_CONV))
LOWERINGS = ("auto", "vmap", "unroll")
EPOCH_LOOPS = ("auto", "scan", "host")


def _resolve(what: str, value: str, choices: tuple[str, ...], on_cpu: str, on_accelerator: str) -> str:
    """``value``, where ``auto`` picks by the device JAX runs on (see the module docstring)."""
    if value not in choices:
        raise UserError(f"{what} {value!r}: expected one of {', '.join(choices)}")
    if value == "auto":
        return on_cpu if jax.default_backend() == "cpu" else on_accelerator
    return value


def resolve_lowering(lowering: str) -> str:
    """``vmap`` or ``unroll``."""
    return _resolve("pack lowering", lowering, LOWERINGS, "unroll", "vmap")


def resolve_epoch_loop(loop: str) -> str:
    """``scan`` or ``host``."""
    return _resolve("epoch loop", loop, EPOCH_LOOPS, "host", "scan")


def _unrolled(function, in_axes=0):
    """``function`` over a leading member axis like ``jax.vmap(function, in_axes)`` (axes 0 or None),
    but traced once per member."""
    def each(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        size = next(jax.tree_util.tree_leaves(a)[0].shape[0] for a, axis in zip(args, axes) if axis == 0)
        outs = [function(*(a if axis is None else jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], a)
                           for a, axis in zip(args, axes))) for i in range(size)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)
    return each


def require_jax_backend() -> None:
    if keras.backend.backend() != "jax":
        raise UserError(f"packed trials need Keras' JAX backend (KERAS_BACKEND=jax); this process runs "
                        f"{keras.backend.backend()}")


@dataclass
class MemberVariables:
    """One member's variables as host arrays, in the Keras model's (and optimizer's) variable order."""

    trainable: list[np.ndarray]
    non_trainable: list[np.ndarray]  # batch-norm statistics and Dropout's seed-generator states
    optimizer: list[np.ndarray]


@dataclass
class PackState:
    """The running pack's variables on the device, each with one leading row per member."""

    trainable: list
    non_trainable: list
    optimizer: list
    codes: jax.Array  # (members, switched layers): each member's activation (or dropout width) per switched layer
    masks: list | None = None  # padded programs: True where a trainable entry is the member's own

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    def keep(self, rows: Sequence[int]) -> PackState:
        """The pack without the members that left (early stopped, finished, failed)."""
        rows = jnp.asarray(np.asarray(rows, dtype=np.int32))
        take = lambda leaves: [a[rows] for a in leaves]  # noqa: E731
        return PackState(take(self.trainable), take(self.non_trainable), take(self.optimizer), self.codes[rows],
                         None if self.masks is None else take(self.masks))

    def replace(self, row: int, variables: MemberVariables, codes: np.ndarray, masks=None) -> PackState:
        """The pack with ``row`` holding another member: its variables (at the program's shapes), codes
        and, in a padded program, masks."""
        put = lambda leaves, values: [a.at[row].set(jnp.asarray(v, dtype=a.dtype))  # noqa: E731
                                      for a, v in zip(leaves, values, strict=True)]
        return PackState(put(self.trainable, variables.trainable), put(self.non_trainable, variables.non_trainable),
                         put(self.optimizer, variables.optimizer), self.codes.at[row].set(jnp.asarray(codes)),
                         None if self.masks is None else put(self.masks, masks))

    def member(self, row: int) -> MemberVariables:
        host = lambda leaves: [np.asarray(a[row]) for a in leaves]  # noqa: E731
        return MemberVariables(host(self.trainable), host(self.non_trainable), host(self.optimizer))


class _SwitchedActivation:
    """A conv activation chosen per member by ``jax.lax.switch`` (see the module docstring)."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self.functions = [keras.activations.get(n) for n in self.names]
        self.code = None  # set to the member's (traced) code before each call of the model

    def __call__(self, x):
        return jax.lax.switch(self.code, self.functions, x)


class PackProgram:
    """The compiled train and evaluate functions of one pack (members share ``members.pack_key``)."""

    def __init__(self, configs: Sequence[TrialConfig], input_shape: tuple[int, ...], num_classes: int,
                 lowering: str = "auto", epoch_loop: str = "auto", activation_choices: Sequence[str] = (),
                 pad_layers: Sequence[int] = (), filter_choices: Sequence[int] = ()):
        """``activation_choices``: activations every conv layer can switch to besides the members' own,
        so members that join later (``fits``) can take a row; none: the members' own only.
        ``pad_layers``: conv layers (numbered from 1) whose filter counts may differ between members;
        ``filter_choices``: the counts each of them can take besides the members' own, likewise."""
        require_jax_backend()
        self.pad_layers = check_pad_layers(pad_layers)
        self.lowering, self.epoch_loop = resolve_lowering(lowering), resolve_epoch_loop(epoch_loop)
        self._side_by_side = jax.vmap if self.lowering == "vmap" else _unrolled
        first = configs[0]
        self.configs = list(configs)
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.batch_size = first.batch_size
        self.filters = tuple(max(f, *filter_choices) if n + 1 in self.pad_layers and filter_choices else f
                             for n, f in enumerate(program_filters(configs, self.pad_layers)))
        self.model = build_study_cnn(first.activations, self.filters, input_shape=self.input_shape,
                                     num_classes=num_classes, bn_momentum=first.bn_momentum)
        self.params = param_counts(self.model)
        self.optimizer = make_optimizer(first.optimizer, first.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.padding = None  # a Padding where members' filters differ from the program's
        if any(tuple(c.filters) != self.filters for c in configs):
            self.padding = Padding(self.model, self.optimizer, self.build_model)
        self._switches: list[_SwitchedActivation] = []
        self._layer_choices: list[tuple[str, ...]] = []  # per conv layer: the activations it can run
        for position, layer_name in enumerate(CONV_ACTIVATION_LAYERS):
            names = sorted({c.activations[position] for c in configs} | set(activation_choices))
            self._layer_choices.append(tuple(names))
            if len(names) > 1:
                switch = _SwitchedActivation(names)
                self.model.get_layer(layer_name).activation = switch
                self._switches.append(switch)
        self._dropout_widths: dict[str, tuple[int, ...]] = {}  # padded Dropout layers: the members' own widths
        if self.padding:
            # Each padded layer at each of its choices (one layer at a time: a Dropout follows one layer).
            choices = [dataclasses.replace(first, filters=self.filters[:n] + (f,) + self.filters[n + 1:])
                       for n in range(len(self.filters)) if n + 1 in self.pad_layers for f in filter_choices]
            for name, width in dropout_widths(self.model).items():
                widths = sorted({self.padding.shapes(c).dropout_widths[name] for c in [*configs, *choices]})
                if widths != [width]:
                    dropout = PaddedDropout(self.model.get_layer(name), widths)
                    self.model.get_layer(name).call = dropout
                    self._switches.append(dropout)
                    self._dropout_widths[name] = tuple(widths)
        self._train = jax.jit(self._train_steps, donate_argnums=(0, 1, 2))
        self._train_one = jax.jit(self._train_step, donate_argnums=(0, 1, 2))
        self._evaluate = jax.jit(self._evaluate_steps)
        self._evaluate_one = jax.jit(self._side_by_side(self._member_evaluate, in_axes=(0, 0, 0, None, None)))
        self._initial: dict[int, MemberVariables] = {}

    def fits(self, config: TrialConfig) -> bool:
        """Whether a member with ``config`` (of this pack's key) can train in this program: every conv
        layer can run its activation, and its filters are the program's (or, padded, its dropouts' own)."""
        if not all(a in names for a, names in zip(config.activations, self._layer_choices, strict=True)):
            return False
        if tuple(config.filters) == self.filters:
            return True
        if self.padding is None or any(f > p for f, p in zip(config.filters, self.filters, strict=True)):
            return False
        own = self.padding.shapes(config).dropout_widths
        return all(own[name] in widths for name, widths in self._dropout_widths.items())

    def codes_for(self, config: TrialConfig) -> np.ndarray:
        """The member's activation index in each switched layer, then its width in each padded dropout."""
        codes = [names.index(a) for a, names in zip(config.activations, self._layer_choices, strict=True)
                 if len(names) > 1]
        if self._dropout_widths:
            own = self.padding.shapes(config).dropout_widths
            codes += [widths.index(own[name]) for name, widths in self._dropout_widths.items()]
        return np.asarray(codes, dtype=np.int32)

    def params_of(self, config: TrialConfig) -> dict[str, int]:
        """The member's own parameter counts (a padded program's are larger)."""
        if self.padding is None or tuple(config.filters) == self.filters:
            return self.params
        return self.padding.shapes(config).params

    # ------------------------------------------------------------ variables

    def build_model(self, config: TrialConfig) -> keras.Model:
        """The member's own Keras model (its activations), as ``study train`` builds it."""
        return build_study_cnn(config.activations, config.filters, input_shape=self.input_shape,
                               num_classes=self.num_classes, bn_momentum=config.bn_momentum)

    def initial_variables(self, config: TrialConfig) -> MemberVariables:
        """What ``study train`` starts from with this seed: ``set_random_seed`` then ``build_study_cnn``.

        Activation layers hold no weights and draw no random numbers, so the weights depend on the
        seed and the shape only: members of one seed and shape share one build. The variables are at
        the member's own shapes (``stack`` and ``replace`` pad them for a padded program).
        """
        key = (config.seed, tuple(config.filters))
        if key not in self._initial:
            keras.utils.set_random_seed(config.seed)
            if self.padding is None:
                model, optimizer = self.build_model(config), self.optimizer
            else:
                model, optimizer = self.padding.own_model(config)
            self._initial[key] = MemberVariables(
                [np.asarray(v.value) for v in model.trainable_variables],
                [np.asarray(v.value) for v in model.non_trainable_variables],
                [np.asarray(v.value) for v in optimizer.variables])  # their initial values, the step count 0
        return self._initial[key]

    def stack(self, members: Sequence[MemberVariables], configs: Sequence[TrialConfig]) -> PackState:
        """Stack members' variables (and their activation codes, from their ``configs``) on the device."""
        stacked = lambda leaves: [jnp.asarray(np.stack(group)) for group in zip(*leaves)]  # noqa: E731
        codes = np.stack([self.codes_for(c) for c in configs]).reshape(len(configs), len(self._switches))
        masks = None
        if self.padding is not None:
            members = [self.padding.pad(m) for m in members]
            masks = stacked([self.padding.masks(c) for c in configs])
        return PackState(stacked([m.trainable for m in members]), stacked([m.non_trainable for m in members]),
                         stacked([m.optimizer for m in members]), jnp.asarray(codes), masks)

    def replace(self, state: PackState, row: int, variables: MemberVariables, config: TrialConfig) -> PackState:
        """``state`` with ``row`` holding the member of ``config`` from its own ``variables``."""
        if self.padding is None:
            return state.replace(row, variables, self.codes_for(config))
        return state.replace(row, self.padding.pad(variables), self.codes_for(config), self.padding.masks(config))

    def member(self, state: PackState, row: int, config: TrialConfig) -> MemberVariables:
        """The member's own variables (at its own shapes) from ``row``."""
        variables = state.member(row)
        return variables if self.padding is None else self.padding.cut(variables, config)

    def assign(self, model: keras.Model, variables: MemberVariables) -> keras.Model:
        """Load a member's weights into a Keras model of its own (for its ``model.keras``)."""
        for variable, value in zip(model.trainable_variables, variables.trainable):
            variable.assign(value)
        for variable, value in zip(model.non_trainable_variables, variables.non_trainable):
            variable.assign(value)
        return model

    # ------------------------------------------------------------ one member, traced under vmap

    def _select(self, codes) -> None:
        for position, switch in enumerate(self._switches):
            switch.code = codes[position]

    def _member_step(self, trainable, non_trainable, optimizer, codes, masks, x, y):
        self._select(codes)

        def loss_fn(trainable):
            y_pred, new_non_trainable = self.model.stateless_call(trainable, non_trainable, x, training=True)
            loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred))
            return loss, (y_pred, new_non_trainable)

        (loss, (y_pred, new_non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        if masks is not None:  # a padded program: the padding has no gradient and does not move
            grads = [jnp.where(m, g, jnp.zeros_like(g)) for g, m in zip(grads, masks, strict=True)]
        new_trainable, new_optimizer = self.optimizer.stateless_apply(optimizer, grads, trainable)
        if masks is not None:
            new_trainable = [jnp.where(m, n, t) for n, t, m in zip(new_trainable, trainable, masks, strict=True)]
        correct = jnp.sum(jnp.argmax(y_pred, axis=-1) == y)
        return new_trainable, new_non_trainable, new_optimizer, loss, correct

    def _member_evaluate(self, trainable, non_trainable, codes, x, y):
        self._select(codes)
        y_pred, _ = self.model.stateless_call(trainable, non_trainable, x, training=False)
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred))
        return loss, jnp.sum(jnp.argmax(y_pred, axis=-1) == y)

    # ------------------------------------------------------------ the pack's compiled functions

    def _train_steps(self, trainable, non_trainable, optimizer, codes, masks, images, labels, batches):
        """``batches``: (steps, members, batch) image indices; returns the variables and per-step results."""
        step = self._side_by_side(self._member_step)

        def body(carry, index):
            out = step(*carry, codes, masks, images[index], labels[index])
            return out[:3], out[3:]

        carry, (loss, correct) = jax.lax.scan(body, (trainable, non_trainable, optimizer), batches)
        return (*carry, loss, correct)

    def _train_step(self, trainable, non_trainable, optimizer, codes, masks, images, labels, index):
        """One step of every member (``index``: (members, batch) image indices), for the host loop."""
        return self._side_by_side(self._member_step)(trainable, non_trainable, optimizer, codes, masks,
                                                      images[index], labels[index])

    def _host_loop(self, state: PackState, images: jax.Array, labels: jax.Array, batches: np.ndarray):
        """``_train_steps``' results, one dispatch per step: (variables..., loss, correct) per step."""
        variables, losses, hits = [state.trainable, state.non_trainable, state.optimizer], [], []
        for index in batches:
            *variables, loss, correct = self._train_one(*variables, state.codes, state.masks, images, labels,
                                                        jnp.asarray(index))
            losses.append(loss)
            hits.append(correct)
        return (*variables, jnp.stack(losses), jnp.stack(hits))

    def _evaluate_steps(self, trainable, non_trainable, codes, images, labels):
        """``images``: (steps, batch, ...) shared by every member; per-step loss and correct count."""
        member = self._side_by_side(self._member_evaluate, in_axes=(0, 0, 0, None, None))

        def body(_, batch):
            return None, member(trainable, non_trainable, codes, *batch)

        _, (loss, correct) = jax.lax.scan(body, None, (images, labels))
        return loss, correct

    def train_epoch(self, state: PackState, images: jax.Array, labels: jax.Array,
                    orders: np.ndarray) -> tuple[PackState, np.ndarray, np.ndarray]:
        """One epoch of every member, each in its own ``orders`` row; its mean loss and accuracy, as fit's."""
        n = orders.shape[1]
        loss_sum = np.zeros(state.size)
        correct = np.zeros(state.size)
        for start, stop, size in _batch_runs(n, self.batch_size):
            batches = orders[:, start:stop].reshape(state.size, -1, size).transpose(1, 0, 2)
            if self.epoch_loop == "host":
                *variables, loss, hits = self._host_loop(state, images, labels, batches)
            else:
                *variables, loss, hits = self._train(state.trainable, state.non_trainable, state.optimizer,
                                                     state.codes, state.masks, images, labels, jnp.asarray(batches))
            state = PackState(*variables, state.codes, state.masks)
            loss_sum += np.asarray(loss, dtype=np.float64).sum(axis=0) * size  # fit weighs batches by size
            correct += np.asarray(hits).sum(axis=0)
        return state, loss_sum / n, correct / n

    def evaluate(self, state: PackState, images: jax.Array, labels: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        n = images.shape[0]
        loss_sum = np.zeros(state.size)
        correct = np.zeros(state.size)
        for start, stop, size in _batch_runs(n, self.batch_size):
            steps = (stop - start) // size
            x = images[start:stop].reshape(steps, size, *images.shape[1:])
            y = labels[start:stop].reshape(steps, size)
            if self.epoch_loop == "host":
                results = [self._evaluate_one(state.trainable, state.non_trainable, state.codes, x[s], y[s])
                           for s in range(steps)]
                loss, hits = jnp.stack([r[0] for r in results]), jnp.stack([r[1] for r in results])
            else:
                loss, hits = self._evaluate(state.trainable, state.non_trainable, state.codes, x, y)
            loss_sum += np.asarray(loss, dtype=np.float64).sum(axis=0) * size
            correct += np.asarray(hits).sum(axis=0)
        return loss_sum / n, correct / n


def _batch_runs(n: int, batch_size: int) -> list[tuple[int, int, int]]:
    """``(start, stop, batch)`` runs of equal batches: the full ones, then the partial last one fit makes."""
    full = n // batch_size * batch_size
    runs = [(0, full, batch_size)] if full else []
    if n > full:
        runs.append((full, n, n - full))
    return runs
