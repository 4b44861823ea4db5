"""What each member of a pack leaves in its own output: what a ``study train`` trial leaves there.

* ``metrics.log``: the member's per-epoch metrics lines (``format_metrics_line``, the lines
  Katib's StdOut collector parses with its default filter), one per finished epoch, exactly
  once: the line is appended after the epoch's checkpoint, and a resumed member rewrites the
  file from its checkpointed history, so a kill between the two loses nothing and repeats nothing.
  (One process cannot be several pods' stdout; see the README section "The study on one GPU".)
* ``checkpoint/pack-member.npz`` + ``checkpoint/pack-state.json``: the variables (weights,
  batch-norm statistics, Dropout's seed-generator states, the optimizer's moments and step count)
  and the finished epochs with their metrics. Array file first, state second: a state file
  always describes a complete array file. The names differ from ``study train``'s
  ``checkpoint/model.keras`` + ``state.json``, so neither runner mistakes the other's checkpoint
  for its own.
* ``tensorboard/``: as ``study train``'s, the member's HParams record (at its first epoch) and each
  epoch's scalars, pushed with the checkpoint.
* ``model.keras`` (the member's own Keras model with its weights), ``history.json``, and
  ``metrics.json`` last: the completion marker, with the fields ``study train`` writes.
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
import json
from dataclasses import dataclass, field

import keras
import numpy as np

from components.cnn.packed.members import Member
from components.cnn.packed.program import MemberVariables
from components.cnn.train import format_metrics_line, hparams_record
from components.core import storage
from components.core.errors import UserError
from components.core.settings import OBJECTIVE_METRIC
from components.core.tblog import SummaryLog
from components.core.training import CHECKPOINT_DIR, METRICS_FILE, save_model

LINES_FILE = "metrics.log"
ARRAYS_FILE = f"{CHECKPOINT_DIR}/pack-member.npz"
STATE_FILE = f"{CHECKPOINT_DIR}/pack-state.json"
LOCK_FILE = ".pack.lock"
TENSORBOARD_DIR = "tensorboard"
_GROUPS = ("trainable", "non_trainable", "optimizer")


@dataclass
class Progress:
    """A member's finished epochs: what its checkpoint records besides the variables."""

    epoch: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    images_seen: int = 0
    epoch_seconds: list[float] = field(default_factory=list)  # the pack's round time of each epoch
    pack_sizes: list[int] = field(default_factory=list)  # members training beside it in each epoch
    early_stopped: bool = False


class MemberFiles:
    """One member's output location (local, ``gs://`` or ``s3://``) with one writer at a time."""

    def __init__(self, member: Member, data_id: str):
        self.member, self.data_id = member, data_id
        self.ws = storage.Workspace(member.output)
        self._lock = open(self.ws.path(LOCK_FILE), "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(f"{member.output}: another process is writing this trial; "
                            "wait for it or use a new output location") from None
        self.ws.pull()
        self._tb: SummaryLog | None = None

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        self._lock.close()  # releases the lock
        self.ws.close()

    # ------------------------------------------------------------ reading what an earlier attempt left

    def _check(self, saved_config: dict, saved_data: str | None, what: str) -> None:
        wanted = self.member.config.as_dict()
        differ = sorted(k for k in set(saved_config) | set(wanted) if saved_config.get(k) != wanted.get(k))
        if saved_data not in (None, self.data_id):
            differ.append("data")
        if differ:
            raise UserError(f"{self.member.output}: holds {what} with other settings ({', '.join(differ)}); "
                            "use a new output location")

    def finished(self) -> dict | None:
        """The member's ``metrics.json`` when an earlier attempt finished it (after checking it is this trial)."""
        path = self.ws.path(METRICS_FILE)
        if not path.exists():
            return None
        metrics = json.loads(path.read_text())
        self._check(metrics["config"], metrics.get("data"), "a finished trial")
        return metrics

    def load(self) -> tuple[Progress, MemberVariables | None]:
        """The last checkpoint (progress and variables), or a fresh start; ``metrics.log`` made to match it."""
        state_path = self.ws.path(STATE_FILE)
        progress, variables = Progress(), None
        if state_path.exists():
            record = json.loads(state_path.read_text())
            self._check(record.pop("config"), record.pop("data", None), "a pack checkpoint")
            progress = Progress(**record)
            with np.load(self.ws.path(ARRAYS_FILE)) as arrays:
                variables = MemberVariables(*([arrays[f"{g}_{i}"] for i in range(int(arrays[f"{g}_count"]))]
                                              for g in _GROUPS))
        self.write_lines(progress)
        return progress, variables

    # ------------------------------------------------------------ writing

    def write_lines(self, progress: Progress) -> None:
        text = "".join(format_metrics_line(i + 1, {k: v[i] for k, v in progress.history.items()}) + "\n"
                       for i in range(progress.epoch))
        with storage.atomic_local_path(self.ws.path(LINES_FILE)) as tmp:
            tmp.write_text(text)
        self.ws.push(LINES_FILE)

    def append_line(self, line: str) -> None:
        with open(self.ws.path(LINES_FILE), "a", encoding="utf-8") as f:
            f.write(line + "\n")
        self.ws.push(LINES_FILE)

    def tensorboard(self, progress: Progress, logs: dict[str, float]) -> None:
        """The epoch's scalars (and, at the first epoch, the HParams record) as ``study train`` writes them."""
        if self._tb is None:
            self._tb = SummaryLog(self.ws.path(TENSORBOARD_DIR))
        if progress.epoch == 1:
            self._tb.hparams(hparams_record(self.member.config))
        self._tb.scalars(logs, step=progress.epoch)

    def save_checkpoint(self, progress: Progress, variables: MemberVariables) -> None:
        self.ws.path(CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        arrays = {}
        for group in _GROUPS:
            values = getattr(variables, group)
            arrays[f"{group}_count"] = np.asarray(len(values))
            arrays.update({f"{group}_{i}": v for i, v in enumerate(values)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with storage.atomic_local_path(self.ws.path(ARRAYS_FILE)) as tmp:
            tmp.write_bytes(buffer.getvalue())
        record = {"config": self.member.config.as_dict(), "data": self.data_id, **dataclasses.asdict(progress)}
        with storage.atomic_local_path(self.ws.path(STATE_FILE)) as tmp:
            tmp.write_text(json.dumps(record))
        self.ws.push(ARRAYS_FILE, STATE_FILE, TENSORBOARD_DIR)

    def finish(self, progress: Progress, model: keras.Model | None, params: dict, wall_seconds: float,
               pack: dict, training_images: int) -> dict:
        """The member's model, history and, last, ``metrics.json``; returns what ``metrics.json`` holds."""
        if model is not None:
            save_model(model, self.ws.path("model.keras"))
        self.ws.path("history.json").write_text(json.dumps(progress.history, indent=2))
        self.ws.push("model.keras", "history.json")
        metrics = summarize(self.member, progress, params, wall_seconds, pack)
        metrics.update(data=self.data_id, training_images=training_images)
        text = json.dumps(metrics, indent=2)
        storage.write_text(storage.join(self.member.output, METRICS_FILE), text)
        if self.ws.remote:  # keep the local mirror complete too (a later resume reads it)
            self.ws.path(METRICS_FILE).write_text(text)
        return metrics


def summarize(member: Member, progress: Progress, params: dict, wall_seconds: float, pack: dict) -> dict:
    """``study train``'s ``metrics.json`` fields, plus how the member was packed."""
    history = progress.history
    objective = history[OBJECTIVE_METRIC]
    best = max(range(len(objective)), key=lambda i: objective[i])
    later = progress.epoch_seconds[1:]
    steady = progress.images_seen / progress.epoch * len(later) / max(sum(later), 1e-9) if later else None
    return {
        "config": member.config.as_dict(),
        "epochs": progress.epoch,
        "final": {k: v[-1] for k, v in history.items()},
        "best": {"epoch": best + 1, **{k: v[best] for k, v in history.items()}},
        "history": history,
        "params": params,
        "train_seconds": progress.train_seconds,
        "wall_seconds_last_attempt": wall_seconds,
        "train_images_per_second": progress.images_seen / max(progress.train_seconds, 1e-9),
        "steady_images_per_second": steady,
        "keras_backend": keras.backend.backend(),
        "early_stopped": progress.early_stopped,
        # The pack's round times: every member of a round trained in that time, side by side.
        "pack": {**pack, "sizes": progress.pack_sizes, "epoch_seconds": progress.epoch_seconds},
    }
