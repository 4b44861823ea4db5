"""Named fault points: a test kills the process at an exact instant instead of sleeping and hoping.

``STUDY_FAULT=POINT`` (or ``POINT@N`` for its N-th occurrence, 1-based, or the
epoch a point passes) makes the process SIGKILL itself when it reaches that
point. Unset, a fault point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "STUDY_FAULT"
_seen: dict[str, int] = {}


def fault_point(name: str, count: int | None = None) -> None:
    """Die here, as SIGKILL would, if ``STUDY_FAULT`` names this point (and this count)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    if count is None:
        count = _seen[name] = _seen.get(name, 0) + 1
    if not nth or int(nth) == count:
        os.kill(os.getpid(), signal.SIGKILL)
