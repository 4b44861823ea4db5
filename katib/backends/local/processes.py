"""Trial process groups: telling a live trial from a reused pid, and stopping an orphaned one.

Each trial runs in its own session (so its own process group, whose id is
the trial's pid): the sweep stops the whole group, and a terminal's Ctrl-C
reaches the sweep alone, which then stops its trials in order. A sweep killed
with SIGKILL cannot stop them; its trials' records hold each one's pid and
start time, and the next run stops a trial left running before running it
again, so two processes never write one trial's output. A kill in the instant
between a trial's start and its record is covered on Linux by a marker in each
trial's environment (``KATIB_LOCAL_TRIAL``), found in ``/proc/*/environ``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from components.core.errors import UserError


def process_identity(pid: int) -> str | None:
    """The start time of live process ``pid`` (None when gone or a zombie): pid plus this is unique."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rfind(")") + 2 :].split()  # the name in (...) may hold spaces
        state, start_ticks = fields[0], fields[19]
        return None if state in ("Z", "X") else start_ticks
    try:
        out = subprocess.run(["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out.startswith("Z"):
        return None
    return out.split(None, 1)[1] if " " in out else out


def stop_orphan(pid: int, identity: str, grace_s: float, log: Callable[[str], None], what: str) -> bool:
    """Stop the process group of ``pid`` if that process is still the one recorded; True if it was running."""
    if not identity or process_identity(pid) != identity:
        return False
    log(f"{what} is still running from an earlier sweep (pid {pid}); stopping it before running it again")
    for signum in (signal.SIGTERM, signal.SIGKILL):  # SIGTERM first, as Katib's collector does
        _signal_group(pid, signum)
        deadline = time.monotonic() + grace_s
        while process_identity(pid) == identity and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_identity(pid) != identity:
            return True
    raise UserError(f"{what} (pid {pid}) from an earlier sweep does not stop; end it, then run again")


TRIAL_MARKER_ENV = "KATIB_LOCAL_TRIAL"


def trial_marker(run_dir: Path, trial_name: str) -> str:
    """What a trial's KATIB_LOCAL_TRIAL holds: its run folder and name, unique on this machine."""
    return f"{run_dir.resolve()}::{trial_name}"


def marked_processes(marker: str) -> list[int]:
    """Live processes (Linux) whose environment has KATIB_LOCAL_TRIAL=marker; [] elsewhere."""
    if not sys.platform.startswith("linux"):
        return []
    needle = f"\0{TRIAL_MARKER_ENV}={marker}\0".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = b"\0" + f.read() + b"\0"
        except OSError:  # gone, or another user's
            continue
        if needle in environ and process_identity(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def stop_marked(marker: str, grace_s: float, log: Callable[[str], None], what: str) -> bool:
    """Stop every process of a trial found by its marker (one started but not recorded); True if any."""
    pids = marked_processes(marker)
    if not pids:
        return False
    log(f"{what} is still running from an earlier sweep (pid {', '.join(map(str, pids))}); stopping it first")
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                _signal_group(os.getpgid(pid), signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not marked_processes(marker):
            return True
    raise UserError(f"{what} (pid {', '.join(map(str, pids))}) from an earlier sweep does not stop; end it first")


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
