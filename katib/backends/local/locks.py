"""Locks that die with their owner: one sweep per run folder, one writer of the Optuna journal.

Both are ``flock`` locks on files in the run folder. The kernel drops a flock
when the process holding it ends in any way (SIGKILL included), so neither can
be left behind: a file that stays without a live holder means nothing. This
replaces Optuna's default journal lock, a symlink whose existence *is* the
lock: a sweep killed while holding it left ``study.journal.lock`` behind, and
every later run retried it forever.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from components.core.errors import UserError
from katib.backends.local import hooks

RUN_LOCK_FILE = "sweep.lock"
# What Optuna's JournalFileSymlinkLock / JournalFileOpenLock leave when killed.
OPTUNA_LOCK_SUFFIX = ".lock"

_guard = threading.Lock()
# Run folders this process holds: resolved path -> [fd, depth]. The lock is re-entrant within
# the process (a sweep stage takes it around run_experiment through LocalBackend.claim, and
# run_experiment takes it again), because a second flock on a new descriptor of the same file
# would conflict with the first.
_held: dict[Path, list[int]] = {}


class RunFolderLock:
    """``with RunFolderLock(run_dir):`` makes this process the only sweep in ``run_dir``.

    A second sweep on the folder is refused at once with a :class:`UserError`
    naming the holder's pid, rather than waiting: two runs of one Experiment
    would both schedule trials against one maxTrialCount.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def __enter__(self) -> RunFolderLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = self.run_dir.resolve()
        with _guard:
            if key in _held:
                _held[key][1] += 1
                return self
            fd = os.open(key / RUN_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise UserError(
                    f"run folder {self.run_dir} is in use by another sweep (pid {holder});"
                    " wait for it to end, stop it, or use another run folder"
                ) from None
            # The pid is for the message above only; the lock itself is the flock.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _held[key] = [fd, 1]
        hooks.reached("run-folder-locked")
        return self

    def __exit__(self, *exc: object) -> None:
        key = self.run_dir.resolve()
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.ftruncate(entry[0], 0)
                os.close(entry[0])  # closing the last descriptor releases the flock


def _holder(fd: int) -> str:
    """The holder's pid as it wrote it (it writes just after locking: wait a moment for it)."""
    deadline = time.monotonic() + 1.0
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.02)


class JournalFlock:
    """Optuna's journal lock as a flock on the journal file itself (nothing extra on disk).

    ``JournalFileBackend(path, lock_obj=...)`` calls only ``acquire()`` and
    ``release()`` (Optuna 5.0's ``get_lock_file``); its base class is private.
    """

    def __init__(self, journal_path: str | Path) -> None:
        self._path = str(journal_path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a live process writes
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        hooks.reached("journal-locked")
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def break_stale_optuna_lock(journal_path: str | Path, log: Callable[[str], None]) -> None:
    """Remove a journal lock an earlier version's killed sweep left behind, saying so.

    Called with the run folder locked, so no live sweep can be using it.
    """
    stale = Path(f"{journal_path}{OPTUNA_LOCK_SUFFIX}")
    if stale.is_symlink() or stale.exists():
        stale.unlink()
        log(f"removed a stale journal lock {stale} left by a sweep that was killed while writing")
