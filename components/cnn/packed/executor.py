"""Run packs: many trials trained in one JAX program, each reported as its own Katib trial.

A pack trains in rounds. In one round every member still running trains its own next epoch (its
own image order, ``epoch_order(seed, epoch)`` as ``study train`` draws it), all in one program;
then each member is evaluated, checkpointed and reported on its own. Members need not be at the
same epoch: after a kill some may have checkpointed an epoch that others had not, and the resumed
pack trains each from its own last checkpoint, so no finished epoch is trained again.

A member leaves the running pack when it has run its epochs, when ``should_stop(name, logs)`` says
so after an epoch (Katib's early stopping: e.g. medianstop's rule for that trial), or when its loss is
not finite (``study train`` fails such a trial; here it is reported failed and nothing claims success).
A pack trains at most ``slots`` members at once; the others wait, and a row that frees takes the next
waiting member (its own epoch 1, or where its checkpoint left it), so the pack keeps the device as
full as before and its program keeps its one compiled size. When none waits, ``tail`` says what a
freed row becomes: ``shrink`` (the default) drops it, and each new size compiles the program once
more; ``pad`` keeps it as an idle row (trained, never recorded) while the live members still need
the pack's size rounded up to a power of two, so a pack compiles at most one size per halving, at
the price of the idle rows' FLOPs. Which costs less is the device's question: on this project's CPU
an idle row of a study-sized epoch costs minutes and a compile seconds; on a GPU it is to be measured.

A pack may also be fed (``PackFeed``: the pack server's, ``components.cnn.packed.server``): members
then come while it trains (``intake``, at a round's end, when a row frees or one is free), and one
whose trial is gone (``cancelled``: Katib stopped its process, or the sweep was interrupted) leaves at
the round's end as a killed ``study train`` would: its last checkpoint stands and nothing claims it
finished, so the trial run again resumes there. A fed member an earlier attempt finished sends its
metrics lines again (``on_line``), as ``study train`` prints a finished trial's lines again.

``STUDY_FAULT`` points: ``pack.member-checkpointed`` (the N-th member checkpoint of the process)
and ``pack.round-checkpointed@N`` (after round N's checkpoints).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from components.cnn.hparams import TrialConfig
from components.cnn.packed.members import Member, group_members
from components.cnn.packed.program import PackProgram, require_jax_backend
from components.cnn.packed.records import MemberFiles, Progress
from components.cnn.train import data_identity, epoch_order, format_metrics_line, metrics_lines
from components.core.dataset import load_dataset, stratified_subset
from components.core.errors import UserError
from components.core.faults import fault_point

TAILS = ("shrink", "pad")
StopRule = Callable[[str, dict], bool]
LineSink = Callable[[str, str], None]


@dataclass
class MemberResult:
    """How a member ended: ``finished``, ``early_stopped``, ``failed`` (``error`` says why) or, in a fed
    pack, ``cancelled`` (its trial is gone; its checkpoint stands)."""

    name: str
    status: str
    metrics: dict | None = None
    error: str | None = None
    epochs_trained: int = 0  # epochs this call trained (a resumed member: only the ones left)


@dataclass
class PackFeed:
    """How a long-running pack meets members that come and go while it trains (see the module docstring)."""

    intake: Callable[[int, Callable[[TrialConfig], bool], bool], list[Member]]  # (free rows, fits, may_wait)
    cancelled: Callable[[str], bool]
    on_result: Callable[[MemberResult], None]
    activation_choices: Sequence[str] = ()  # what every conv layer can switch to, for members to come
    filter_choices: Sequence[int] = ()  # the filter counts a padded conv layer can take, likewise
    resized: Callable[[int], None] = lambda rows: None  # the pack's rows now (it shrank)


@dataclass
class _DeviceData:
    train_x: object
    train_y: object
    labels: np.ndarray  # the training labels on the host, to draw a member's subset from
    val_x: object
    val_y: object
    n_train: int
    input_shape: tuple
    num_classes: int
    data_id: str


def load_device_data(data_uri: str) -> _DeviceData:
    """The dataset on the device once, as ``study train`` feeds it (float32 in [0, 1], a channel axis)."""
    data = load_dataset(data_uri)
    train_x = data.images("train")
    labels = np.asarray(data.y["train"], dtype=np.int32)
    return _DeviceData(jnp.asarray(train_x), jnp.asarray(labels), labels, jnp.asarray(data.images("val")),
                       jnp.asarray(np.asarray(data.y["val"], dtype=np.int32)),
                       len(train_x), tuple(train_x.shape[1:]), int(data.metadata["num_classes"]),
                       data_identity(data_uri))


def training_subset(config, data: _DeviceData) -> np.ndarray:
    """The member's training images, as ``study train`` draws them: all, or a stratified subset drawn
    from its seed alone (``train_images``, part of the pack key, so a pack's members train as many)."""
    if not config.train_images:
        return np.arange(data.n_train)
    return stratified_subset(data.labels, config.train_images, np.random.default_rng(config.seed))


def run_packs(members: Sequence[Member], data_uri: str, *, should_stop: StopRule | None = None,
              checkpoints: bool = True, save_models: bool = True, max_members: int | None = None,
              on_line: LineSink | None = None, log: Callable[[str], None] = print,
              lowering: str = "auto", epoch_loop: str = "auto", tail: str = "shrink",
              pad_layers: Sequence[int] = ()) -> list[MemberResult]:
    """Group ``members`` into packs (``members.group_members``, ``pad_layers`` its own) and run them one
    after another, each training at most ``max_members`` at once (the rest take rows as they free)."""
    require_jax_backend()
    data = load_device_data(data_uri)
    results = []
    for pack in group_members(members, pad_layers=pad_layers):
        results += run_pack(pack, data, should_stop=should_stop, checkpoints=checkpoints,
                            save_models=save_models, on_line=on_line, log=log, lowering=lowering,
                            epoch_loop=epoch_loop, slots=max_members, tail=tail, pad_layers=pad_layers)
    return results


def run_pack(members: Sequence[Member], data: _DeviceData | str, *, should_stop: StopRule | None = None,
             checkpoints: bool = True, save_models: bool = True, on_line: LineSink | None = None,
             log: Callable[[str], None] = print, lowering: str = "auto",
             epoch_loop: str = "auto", slots: int | None = None, tail: str = "shrink",
             feed: PackFeed | None = None, pad_layers: Sequence[int] = ()) -> list[MemberResult]:
    """Train (or resume) one pack of members that share ``members.pack_key`` (``pad_layers`` its own); one
    result per member (``lowering``, ``epoch_loop``: how they sit side by side and how an epoch loops, see ``program``;
    ``slots``: how many train at once, None for all of them; ``tail``, ``feed``: see the module docstring).
    A fed pack reports a member it cannot take (its output busy or another trial's) as failed; one not
    fed refuses the whole pack."""
    require_jax_backend()
    members = [m.normalized() for m in members]
    if slots is not None and slots < 1:
        raise UserError(f"pack slots {slots}: expected a positive number of members training at once")
    if tail not in TAILS:
        raise UserError(f"pack tail {tail!r}: expected one of {', '.join(TAILS)}")
    if isinstance(data, str):
        data = load_device_data(data)
    files = [] if feed else [MemberFiles(m, data.data_id) for m in members]
    pack = _Pack(list(members), files, data, should_stop, checkpoints, save_models, on_line, log,
                 (lowering, epoch_loop), slots or len(members), tail, feed, tuple(pad_layers))
    try:
        return pack.run()
    finally:
        for f in pack.files:
            if f is not None:
                f.close()


class _Pack:
    def __init__(self, members, files, data, should_stop, checkpoints, save_models, on_line, log, layout, slots,
                 tail, feed=None, pad_layers=()):
        self.members, self.files, self.data, self.layout, self.slots = members, files, data, layout, slots
        self.tail, self.feed, self.pad_layers = tail, feed, pad_layers
        self.should_stop, self.checkpoints, self.save_models = should_stop, checkpoints, save_models
        self.on_line, self.log = on_line, log
        self.results: dict[int, MemberResult] = {}
        self.progress: dict[int, Progress] = {}
        self.trained: dict[int, int] = {}
        self.started = time.perf_counter()
        self.subsets: dict[int, np.ndarray] = {}
        # Members share train_images (the pack key), so every row trains this many images an epoch.
        self.n_images = len(training_subset(members[0].config, data)) if members else 0

    def _order(self, i: int) -> np.ndarray:
        """Member ``i``'s image indices for its next epoch: ``study train``'s order over its own subset."""
        if i not in self.subsets:
            self.subsets[i] = training_subset(self.members[i].config, self.data)
        subset = self.subsets[i]
        return subset[epoch_order(self.members[i].config.seed, self.progress[i].epoch, len(subset))]

    def run(self) -> list[MemberResult]:
        # Every member's activations are known to the program from the start, so any of them can take a row
        # (and, fed, any member to come whose activations are among the choices).
        program = PackProgram([m.config for m in self.members], self.data.input_shape, self.data.num_classes,
                              *self.layout, activation_choices=self.feed.activation_choices if self.feed else (),
                              pad_layers=self.pad_layers, filter_choices=self.feed.filter_choices if self.feed else ())
        self.program = program
        self.pack_info = {"key": _describe(self.members[0], program), "members": len(self.members),
                          "lowering": program.lowering, "epoch_loop": program.epoch_loop,
                          **({"padded_filters": list(program.filters)} if program.padding is not None else {})}
        self.waiting: deque[int] = deque()
        members, self.members = self.members, []
        if self.feed is None:
            self.members = members
        for i, member in enumerate(members):
            if self.feed is None:
                self._admit(i, self.files[i])
            else:
                self._add(member)
        rows, variables = [], []
        while len(rows) < self.slots:
            admitted = self._next_waiting()
            if admitted is None:
                break
            rows.append(admitted[0])
            variables.append(admitted[1])
        if rows:
            self.log(f"pack: {_members(len(rows))} ({self.pack_info['key']}), {program.params['total']:,} "
                     f"parameters each" + (f"; {len(self.waiting)} wait for a row" if self.waiting else ""))
            self._train(rows, program.stack(variables, [self.members[i].config for i in rows]))
        return [self.results[i] for i in range(len(self.members))]

    def _add(self, member: Member) -> None:
        """A fed member: it waits for a row, or fails here if its output cannot be this trial's."""
        member = member.normalized()
        self.members.append(member)
        i = len(self.members) - 1
        try:
            files = MemberFiles(member, self.data.data_id)
        except UserError as error:
            self.files.append(None)
            self.progress[i], self.trained[i] = Progress(), 0
            self._result(i, MemberResult(member.name, "failed", error=str(error)))
            return
        self.files.append(files)
        try:
            self._admit(i, files)
        except UserError as error:  # it holds another trial's checkpoint or results
            self._result(i, MemberResult(member.name, "failed", error=str(error)))

    def _admit(self, i: int, files: MemberFiles) -> None:
        """Member ``i`` waits for a row, unless an earlier attempt finished it."""
        finished = files.finished()
        if finished is not None:  # the same settings (checked), so its epochs were run or it was stopped
            self.log(f"pack: {self.members[i].name} already finished")
            if self.feed and self.on_line:  # its trial's process prints its lines again, as study train's
                for line in metrics_lines(finished):
                    self.on_line(self.members[i].name, line)
            self._result(i, MemberResult(self.members[i].name, "early_stopped" if finished.get("early_stopped")
                                         else "finished", finished))
            return
        self.waiting.append(i)

    def _result(self, i: int, result: MemberResult) -> None:
        if self.files[i] is not None:  # its output is free for the trial's next attempt as soon as it ends
            self.files[i].close()
            self.files[i] = None
        self.results[i] = result
        if self.feed:
            self.feed.on_result(result)

    def _fed(self, free: int, may_wait: bool) -> None:
        """Take members the feed has for ``free`` rows (waiting up to its own time when ``may_wait``)."""
        if self.feed and free > 0:
            for member in self.feed.intake(free, self.program.fits, may_wait):
                self._add(member)

    def _next_waiting(self, may_wait: bool = False):
        """The next waiting member that still has epochs to train and its variables (its checkpoint's, or
        its seed's initial ones), or None when none is left. One killed after its last checkpoint, before
        its marker, is finished on the way: only its final files were left to write. A fed pack asks its
        feed when none waits here."""
        while True:
            if not self.waiting:
                self._fed(1, may_wait)
            if not self.waiting:
                return None
            i = self.waiting.popleft()
            member, files = self.members[i], self.files[i]
            if self.feed and self.feed.cancelled(member.name):
                self.progress.setdefault(i, Progress())
                self.trained.setdefault(i, 0)
                self._result(i, MemberResult(member.name, "cancelled"))
                continue
            progress, saved = files.load() if self.checkpoints else (Progress(), None)
            if not self.checkpoints:
                files.write_lines(progress)  # a fresh start: no lines of an earlier attempt stay
            if progress.epoch:
                self.log(f"pack: {member.name} resumes after epoch {progress.epoch} of {member.config.epochs}")
            self.progress[i], self.trained[i] = progress, 0
            if progress.epoch >= member.config.epochs or progress.early_stopped:
                self._finish(i, saved, "early_stopped" if progress.early_stopped else "finished")
                continue
            return i, saved if saved is not None else self.program.initial_variables(member.config)

    def _train(self, rows: list[int | None], state) -> None:
        """Rounds until no member is left; a row holds a member's index, or None where it is idle."""
        program, data = self.program, self.data
        round_number = 0
        while any(i is not None for i in rows):
            round_number += 1
            live = [i for i in rows if i is not None]
            # An idle row trains on in plain order: its results are never read.
            orders = np.stack([np.arange(self.n_images) if i is None else self._order(i)
                               for i in rows]).astype(np.int32)
            start = time.perf_counter()
            state, loss, accuracy = program.train_epoch(state, data.train_x, data.train_y, orders)
            seconds = time.perf_counter() - start  # the training part of the round (fit's epoch time too)
            val_loss, val_accuracy = program.evaluate(state, data.val_x, data.val_y)
            idle = len(rows) - len(live)
            self.log(f"pack: round {round_number}, {_members(len(live))} trained"
                     + (f" ({_idle_rows(idle)})" if idle else "")
                     + f" in {seconds:.1f} s ({len(live) * self.n_images / max(seconds, 1e-9):,.0f} images/s "
                       "for the pack)")
            leaving: dict[int, tuple[str, str | None]] = {}
            for row, i in enumerate(rows):
                if i is None:
                    continue
                logs = {"loss": float(loss[row]), "accuracy": float(accuracy[row]),
                        "val_loss": float(val_loss[row]), "val_accuracy": float(val_accuracy[row])}
                outcome = self._record_epoch(i, row, logs, seconds, len(live), state)
                if outcome is None and self.feed and self.feed.cancelled(self.members[i].name):
                    outcome = "cancelled", None  # its trial is gone: this epoch's checkpoint stands
                if outcome:
                    leaving[i] = outcome
            fault_point("pack.round-checkpointed", round_number)
            for row, i in enumerate(rows):
                if i in leaving:
                    self._leave(i, row, state, *leaving[i])
            self._fed(sum(i is None or i in leaving for i in rows) - len(self.waiting), False)
            may_wait = True  # a fed pack waits once a round for a member to take a freed row
            for row, i in enumerate(list(rows)):
                if i is not None and i not in leaving:
                    continue
                admitted = self._next_waiting(may_wait=may_wait and i is not None)
                if admitted is None:
                    may_wait = may_wait and i is None
                    rows[row] = None  # nobody waits: the row is free
                    continue
                # The freed row trains the next waiting member: the same size.
                self.log(f"pack: {self.members[admitted[0]].name} takes "
                         + (f"{self.members[i].name}'s row" if i is not None else "an idle row"))
                state = self.program.replace(state, row, admitted[1], self.members[admitted[0]].config)
                rows[row] = admitted[0]
            keep = self._rows_kept(rows)
            if len(keep) < len(rows):
                state = state.keep(keep) if keep else None
                rows = [rows[row] for row in keep]
                if self.feed:
                    self.feed.resized(len(rows))
                going_on = sum(i is not None for i in rows)
                if going_on:
                    idle = len(rows) - going_on
                    self.log(f"pack: {_members(going_on)} go" + ("es" if going_on == 1 else "") + " on"
                             + (f" beside {_idle_rows(idle)}" if idle else ""))

    def _rows_kept(self, rows: list[int | None]) -> list[int]:
        """The rows the next round trains: every live one, and with ``tail="pad"`` as many free ones as
        round the pack up to a power of two (never more than it has)."""
        live = [row for row, i in enumerate(rows) if i is not None]
        size = len(live) if self.tail == "shrink" or not live else min(1 << (len(live) - 1).bit_length(), len(rows))
        free = [row for row, i in enumerate(rows) if i is None]
        return sorted(live + free[:size - len(live)])

    def _record_epoch(self, i: int, row: int, logs: dict, seconds: float, size: int, state):
        """The member's epoch: its checkpoint, then its metrics line; why it leaves the pack, if it does."""
        member, progress, files = self.members[i], self.progress[i], self.files[i]
        if not math.isfinite(logs["loss"]):
            return "failed", (f"loss is {logs['loss']} at epoch {progress.epoch + 1}: training diverged "
                              f"(optimizer {member.config.optimizer}, learning rate "
                              f"{member.config.learning_rate or 'default'})")
        progress.epoch += 1
        self.trained[i] += 1
        progress.train_seconds += seconds
        progress.epoch_seconds.append(seconds)
        progress.images_seen += self.n_images
        progress.pack_sizes.append(size)
        for name, value in logs.items():
            progress.history.setdefault(name, []).append(value)
        stop = progress.epoch < member.config.epochs and bool(self.should_stop and self.should_stop(member.name, logs))
        progress.early_stopped = stop
        files.tensorboard(progress, logs)
        if self.checkpoints:
            files.save_checkpoint(progress, self.program.member(state, row, member.config))
            fault_point("pack.member-checkpointed")
        line = format_metrics_line(progress.epoch, logs)
        files.append_line(line)
        if self.on_line:
            self.on_line(member.name, line)
        if stop:
            return "early_stopped", None
        return ("finished", None) if progress.epoch >= member.config.epochs else None

    def _leave(self, i: int, row: int, state, status: str, error: str | None) -> None:
        member = self.members[i]
        if status == "failed":
            self.log(f"pack: {member.name} FAILED: {error}")
            self._result(i, MemberResult(member.name, status, error=error, epochs_trained=self.trained[i]))
            return
        if status == "cancelled":
            self.log(f"pack: {member.name} leaves the pack after epoch {self.progress[i].epoch}: its trial is gone")
            self._result(i, MemberResult(member.name, status, epochs_trained=self.trained[i]))
            return
        self._finish(i, self.program.member(state, row, member.config) if self.save_models else None, status)

    def _finish(self, i: int, variables, status: str) -> None:
        member = self.members[i]
        model = None
        if self.save_models and variables is not None:
            model = self.program.assign(self.program.build_model(member.config), variables)
        metrics = self.files[i].finish(self.progress[i], model, self.program.params_of(member.config),
                                       time.perf_counter() - self.started, self.pack_info, self.n_images)
        self.log(f"pack: {member.name} {status.replace('_', ' ')} after epoch {self.progress[i].epoch}: "
                 f"best val_accuracy {metrics['best']['val_accuracy']:.4f}")
        self._result(i, MemberResult(member.name, status, metrics, epochs_trained=self.trained[i]))


def _members(n: int) -> str:
    return f"{n} member" + ("s" if n != 1 else "")


def _idle_rows(n: int) -> str:
    return f"{n} idle row" + ("s" if n > 1 else "")


def _describe(member: Member, program: PackProgram) -> str:
    c = member.config
    lr = "default" if c.learning_rate is None else f"{c.learning_rate:g}"
    filters = ",".join(map(str, program.filters)) + (" (padded)" if program.padding is not None else "")
    return f"filters {filters}, {c.optimizer} (learning rate {lr}), batch {c.batch_size}"
