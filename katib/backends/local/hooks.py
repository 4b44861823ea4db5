"""Named instants where a test can stop or kill the sweep, to drive kills and races exactly.

A kill test cannot rely on sleeping until "about the right moment": the
dangerous instants (inside Optuna's ask, while the journal is locked, between
a trial's end and its record) last microseconds. The runner calls
:func:`reached` at each such instant; with ``STUDY_TEST_PAUSE_AT=<point>`` the
process stops itself there (SIGSTOP: the test sees it with ``waitpid`` and
``WUNTRACED``, sends the signal it wants, then SIGCONT), and with
``STUDY_TEST_KILL_AT=<point>`` it SIGKILLs itself there. ``<point>@N`` acts on
the N-th time the point is reached (default the first); several entries are
separated by commas. Without these variables a call costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

PAUSE_ENV = "STUDY_TEST_PAUSE_AT"
KILL_ENV = "STUDY_TEST_KILL_AT"

_counts: dict[str, int] = {}
_lock = threading.Lock()


def active() -> bool:
    return bool(os.environ.get(PAUSE_ENV) or os.environ.get(KILL_ENV))


def reached(point: str) -> None:
    """Stop or kill this process here when a test asked for ``point``."""
    pause, kill = os.environ.get(PAUSE_ENV), os.environ.get(KILL_ENV)
    if not pause and not kill:
        return
    with _lock:
        _counts[point] = count = _counts.get(point, 0) + 1
    if kill and _wanted(kill, point, count):
        os.kill(os.getpid(), signal.SIGKILL)
    if pause and _wanted(pause, point, count):
        os.kill(os.getpid(), signal.SIGSTOP)


def _wanted(spec: str, point: str, count: int) -> bool:
    for entry in spec.split(","):
        name, _, nth = entry.strip().partition("@")
        if name == point and count == (int(nth) if nth else 1):
            return True
    return False
