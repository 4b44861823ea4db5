"""Ctrl-C and SIGTERM for a sweep: raised between steps, held back inside them.

A signal that lands inside Optuna's ask or tell, or between a trial's record
and its Optuna state, would leave the journal half-written (a trial without
parameters). The runner therefore turns SIGINT and SIGTERM into
:class:`SweepInterrupted` only outside :meth:`InterruptGuard.deferred`
sections; inside one, the signal is remembered and raised when the section
ends. SIGKILL cannot be held back; resume repairs what it leaves.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped by SIGINT or SIGTERM (a KeyboardInterrupt, so callers that handle Ctrl-C handle it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class InterruptGuard:
    """Installs the sweep's SIGINT/SIGTERM handlers (main thread only) and defers them on request."""

    def __init__(self) -> None:
        self._depth = 0
        # The signal received and not yet handled. Kept after raising too: Python drops an
        # exception raised while it runs a weakref callback or __del__, so the scheduler checks.
        self._received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; whoever runs us there handles them
        for signum in HANDLED_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue  # started with the signal ignored (nohup, a background job): keep it so
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A section a signal must not split: one that arrives inside is raised at its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            self.check()

    def check(self) -> None:
        """Raise the signal received, if any (outside deferred sections)."""
        if self._depth == 0 and self._received is not None:
            raise SweepInterrupted(self._received)

    def acknowledge(self) -> None:
        """The interruption is being handled: later deferred sections end without raising it again."""
        self._received = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._received = self._received or signum
        self.check()


def resume_command() -> str:
    """The command line that started this process, as the user would type it again."""
    script = sys.argv[0] if sys.argv else ""
    name = os.path.basename(script)
    # A console script (`study sweep run ...`) is found on PATH under its own name.
    found = shutil.which(name) if name and not name.endswith(".py") else None
    if found and os.path.realpath(found) == os.path.realpath(script):
        return shlex.join([name, *sys.argv[1:]])
    return shlex.join(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
