"""The pack server: a sweep's trials trained in packs on this machine, each trial still its own process.

The local Katib backend runs each trial's command, ``study train ...``, as a process of its own,
reads the trial's metrics lines from that process' output and ends the process when early stopping
says so, as Katib does with a trial's pod. With ``STUDY_PACK_SERVER`` set to this server's socket
(the sweep stage sets it when ``sweeps.local_pack_slots`` is set), ``study train`` does not train:
it hands its trial to this server (``client.train_in_pack``), prints the metrics lines the server
sends it, and exits as its trial ended. So Katib's view is unchanged (one process per trial, its
lines, its exit status, its early stop by ending the process), while the device runs packs
(``executor.run_pack`` fed by a ``PackFeed``):

* Trials that share a pack key (``members.pack_key``, the data too) train in one pack; with
  ``--pad-filters`` their filter counts may differ in those conv layers, padded (``padding.py``) to
  the largest of ``--filter-choices`` so that any trial of the key fits a running pack. At most
  ``slots`` members train at once over all packs; a pack starts when its key has as many waiting as
  there are free rows, or when no trial has come for ``gather_s`` seconds (trials start one by one).
* A freed row takes the next waiting trial of its key, waiting up to ``gather_s`` once a round for
  one to come (the sweep starts the next trial when one ends), so the pack keeps its size.
* A trial whose process ends before its trial did (Katib's early stopping, an interrupted sweep)
  leaves its pack at the round's end; its last checkpoint stands, so a rerun resumes there.

Protocol: one JSON object per line over a Unix socket. The client sends one request,
``{"name", "config", "data", "output"}``; the server sends ``{"line": ...}`` per finished epoch,
then ``{"end": status, "error": ..., "metrics": ...}``, and closes its side.

Run: ``python -m components.cnn.packed.server --socket PATH --slots N`` (``KERAS_BACKEND=jax``). It
prints one ``ready`` line when it listens and ends when its standard input closes (its sweep ended
or died), or on SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from components.cnn.hparams import ACTIVATIONS, TrialConfig
from components.cnn.packed.client import SERVER_ENV
from components.cnn.packed.members import Member, check_pad_layers, pack_key
from components.core.argtypes import comma_list
from components.core.errors import UserError

READY = "ready"
GATHER_S = 2.0


@dataclass
class _Trial:
    member: Member
    data: str
    key: tuple
    conn: socket.socket
    gone: threading.Event = field(default_factory=threading.Event)  # its process closed the connection
    ended: bool = False

    def send(self, message: dict) -> None:
        try:
            self.conn.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            pass  # its process is gone: what the member leaves in its output stays


class PackServer:
    def __init__(self, path: str, slots: int, *, tail: str = "shrink", gather_s: float = GATHER_S,
                 lowering: str = "auto", epoch_loop: str = "auto", checkpoints: bool = True,
                 pad_filters: Sequence[int] = (), filter_choices: Sequence[int] = (),
                 log: Callable[[str], None] = print):
        if slots < 1:
            raise UserError(f"pack slots {slots}: expected a positive number of trials training at once")
        self.pad_filters, self.filter_choices = check_pad_layers(pad_filters), tuple(filter_choices)
        self.path, self.slots, self.tail, self.gather_s = path, slots, tail, gather_s
        self.layout, self.checkpoints, self.log = (lowering, epoch_loop), checkpoints, log
        self.cond = threading.Condition()
        self.waiting: list[_Trial] = []
        self.trials: dict[str, _Trial] = {}  # by output: one request per trial at a time
        self.pack_rows: dict[int, int] = {}  # each running pack's rows
        self.last_arrival = 0.0
        self._data: dict[str, object] = {}
        self._data_lock = threading.Lock()
        self._pack_ids = itertools.count(1)

    # ------------------------------------------------------------ connections

    def listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(128)
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="accept").start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self._client, args=(conn,), daemon=True, name="client").start()

    def _client(self, conn: socket.socket) -> None:
        reader = conn.makefile("r", encoding="utf-8")
        try:
            request = json.loads(reader.readline() or "null")
            config = TrialConfig(**request["config"]).normalized()
            member = Member(str(request["name"]), config, str(request["output"]))
            key = (str(request["data"]), pack_key(config, self.pad_filters))
            trial = _Trial(member, str(request["data"]), key, conn)
        except (ValueError, KeyError, TypeError, UserError) as error:
            _Trial(None, "", (), conn).send({"end": "refused", "error": f"not a trial request: {error}"})
            conn.close()
            return
        with self.cond:
            if member.output in self.trials:
                trial.send({"end": "refused", "error": f"{member.output}: this server already trains that trial"})
                conn.close()
                return
            self.trials[member.output] = trial
            self.waiting.append(trial)
            self.last_arrival = time.monotonic()
            self.cond.notify_all()
        try:
            reader.read()  # until its process closes the connection: after its end, or killed before it
        except OSError:
            pass
        trial.gone.set()
        reader.close()
        conn.close()
        with self.cond:
            self.cond.notify_all()

    # ------------------------------------------------------------ scheduling

    def serve_forever(self) -> None:
        while True:
            with self.cond:
                trials = self._next_pack()
                pack_id = next(self._pack_ids)
                self.pack_rows[pack_id] = len(trials)
            threading.Thread(target=self._run_pack, args=(pack_id, trials), daemon=True, name=f"pack-{pack_id}").start()

    def _free_rows(self) -> int:
        return self.slots - sum(self.pack_rows.values())

    def _live_waiting(self) -> list[_Trial]:
        for trial in [t for t in self.waiting if t.gone.is_set()]:  # ended before a row was free
            self.waiting.remove(trial)
            self._ended(trial, {"end": "cancelled"})
        return self.waiting

    def _next_pack(self) -> list[_Trial]:
        """(Under the lock.) The trials of the next pack: wait for free rows and waiting trials, gather
        them (see the module docstring), then take the key with the most waiting, the oldest first."""
        while True:
            free = self._free_rows()
            waiting = self._live_waiting()
            if free > 0 and waiting:
                counts: dict[tuple, int] = {}
                for trial in waiting:
                    counts[trial.key] = counts.get(trial.key, 0) + 1
                quiet = time.monotonic() - self.last_arrival
                if max(counts.values()) >= free or quiet >= self.gather_s:
                    key = max(counts, key=lambda k: counts[k])  # ties: the first seen (dicts keep order)
                    chosen = [t for t in waiting if t.key == key][:free]
                    for trial in chosen:
                        self.waiting.remove(trial)
                    return chosen
                self.cond.wait(self.gather_s - quiet)
            else:
                self.cond.wait()

    def _intake(self, key: tuple, free: int, fits: Callable[[TrialConfig], bool], may_wait: bool) -> list[_Trial]:
        """Waiting trials of ``key`` that fit the pack's program, for its ``free`` rows."""
        deadline = time.monotonic() + (self.gather_s if may_wait else 0.0)
        with self.cond:
            while True:
                chosen = [t for t in self._live_waiting() if t.key == key and fits(t.member.config)][:free]
                remaining = deadline - time.monotonic()
                if chosen or remaining <= 0:
                    break
                self.cond.wait(remaining)
            for trial in chosen:
                self.waiting.remove(trial)
        return chosen

    def _ended(self, trial: _Trial, message: dict) -> None:
        """(Under the lock, or for a trial no other thread holds.) Send the trial's end and forget it."""
        if trial.ended:
            return
        trial.ended = True
        trial.send(message)
        try:
            trial.conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.trials.pop(trial.member.output, None)

    # ------------------------------------------------------------ one pack

    def _run_pack(self, pack_id: int, trials: list[_Trial]) -> None:
        from components.cnn.packed.executor import PackFeed, run_pack

        key = trials[0].key
        by_name = {t.member.name: t for t in trials}

        def intake(free, fits, may_wait):
            taken = self._intake(key, free, fits, may_wait)
            by_name.update({t.member.name: t for t in taken})
            return [t.member for t in taken]

        def on_result(result) -> None:
            trial = by_name[result.name]
            with self.cond:
                self._ended(trial, {"end": result.status, "error": result.error, "metrics": result.metrics})

        def resized(rows: int) -> None:
            with self.cond:
                self.pack_rows[pack_id] = rows
                self.cond.notify_all()

        feed = PackFeed(intake=intake, cancelled=lambda name: by_name[name].gone.is_set(), on_result=on_result,
                        activation_choices=ACTIVATIONS, filter_choices=self.filter_choices, resized=resized)
        try:
            data = self._device_data(trials[0].data)
            run_pack([t.member for t in trials], data, checkpoints=self.checkpoints,
                     log=lambda line: self.log(f"[pack {pack_id}] {line}"),
                     on_line=lambda name, line: by_name[name].send({"line": line}),
                     lowering=self.layout[0], epoch_loop=self.layout[1], slots=len(trials), tail=self.tail,
                     feed=feed, pad_layers=self.pad_filters)
            failure = "the pack ended before this trial did"
        except Exception as error:  # noqa: BLE001 - every member of the pack is told, then the server goes on
            self.log(f"[pack {pack_id}] failed: {type(error).__name__}: {error}")
            failure = f"its pack failed: {type(error).__name__}: {error}"
        with self.cond:
            for trial in by_name.values():
                self._ended(trial, {"end": "failed", "error": failure})
            self.pack_rows.pop(pack_id, None)
            self.cond.notify_all()

    def _device_data(self, uri: str):
        from components.cnn.packed.executor import load_device_data

        with self._data_lock:
            if uri not in self._data:
                self._data[uri] = load_device_data(uri)
            return self._data[uri]


@contextmanager
def running_server(slots: int, log_path: str | Path, *, tail: str = "shrink", gather_s: float = GATHER_S,
                   pad_filters: Sequence[int] = (), filter_choices: Sequence[int] = ()) -> Iterator[dict[str, str]]:
    """A pack server for one sweep, its log appended to ``log_path``; yields the trials' environment
    (``STUDY_PACK_SERVER``). It ends with the block, or with this process (its standard input closes).
    ``pad_filters``: conv layers whose filter counts a pack's members may differ in, each taking one of
    ``filter_choices``."""
    if importlib.util.find_spec("jax") is None:
        raise UserError("sweeps.local_pack_slots: packed trials need JAX, which is not installed "
                        "(pip install jax; on an NVIDIA GPU, jax[cuda12])")
    folder = tempfile.mkdtemp(prefix="study-packs-")  # short: a socket's path has at most ~100 bytes
    path = os.path.join(folder, "server.sock")
    command = [sys.executable, "-m", "components.cnn.packed.server", "--socket", path, "--slots", str(slots),
               "--tail", tail, "--gather-s", str(gather_s)]
    if pad_filters:
        command += ["--pad-filters", ",".join(map(str, pad_filters)),
                    "--filter-choices", ",".join(map(str, filter_choices))]
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                      env={**os.environ, "KERAS_BACKEND": "jax"})
        try:
            if server.stdout.readline().strip() != READY:
                server.wait()
                raise UserError(f"the pack server did not start (exit status {server.returncode}); see {log_path}")
            yield {SERVER_ENV: path}
        finally:
            server.stdin.close()  # it ends when its standard input closes
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.cnn.packed.server", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on (created; must not exist)")
    parser.add_argument("--slots", type=int, required=True, help="members training at once, over all packs")
    parser.add_argument("--tail", default="shrink", help="shrink or pad (see executor)")
    parser.add_argument("--gather-s", type=float, default=GATHER_S, help="how long to wait for trials to come")
    parser.add_argument("--lowering", default="auto")
    parser.add_argument("--epoch-loop", default="auto")
    parser.add_argument("--pad-filters", type=comma_list(int), default=(),
                        help="conv layers (1 to 4) whose filter counts a pack's members may differ in, e.g. 3,4")
    parser.add_argument("--filter-choices", type=comma_list(int), default=(),
                        help="the filter counts a padded layer can take (every pack's program is wide enough)")
    args = parser.parse_args(argv)
    if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
        print(f"error: the pack server needs KERAS_BACKEND=jax, not {os.environ['KERAS_BACKEND']}", file=sys.stderr)
        return 2
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        server = PackServer(args.socket, args.slots, tail=args.tail, gather_s=args.gather_s, lowering=args.lowering,
                            epoch_loop=args.epoch_loop, pad_filters=args.pad_filters,
                            filter_choices=args.filter_choices, log=log)
        from components.cnn.packed.program import require_jax_backend  # imports Keras on JAX before any trial

        require_jax_backend()
        server.listen()
    except (UserError, OSError) as error:
        print(f"error: pack server: {error}", file=sys.stderr)
        return 2

    def until_stdin_closes() -> None:
        sys.stdin.read()
        os._exit(0)  # its sweep ended or died; every write of a member is atomic (see records)

    threading.Thread(target=until_stdin_closes, daemon=True, name="stdin").start()
    print(READY, flush=True)
    padded = (f"; conv layer(s) {','.join(map(str, server.pad_filters))} padded to the largest of "
              f"{','.join(map(str, server.filter_choices))} filters") if server.pad_filters else ""
    log(f"pack server: {args.slots} slots on {args.socket}{padded}")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
