"""`study run`'s console, for real: a run whose data step fails, once piped and once on a terminal.

The data step is given IDX files with a wrong magic number, so the run stops seconds after it
starts, inside a step (the settings themselves are fine), which is where a failure's report matters.
"""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
import sys

import pytest

from tests.conftest import REPO, last_error_line, run_cli

pytestmark = pytest.mark.slow
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


@pytest.fixture()
def corrupt_source(tmp_path):
    source = tmp_path / "corrupt"
    source.mkdir()
    for name in FILES:
        (source / name).write_bytes(gzip.compress(b"\x00\x00\x08\x99" + bytes(64)))  # wrong magic
    return source


def run_args(tmp_path, source, run_id):
    return ["run", "--runs-dir", tmp_path / "runs", "--run-id", run_id, "--set", f"data.source={source}"]


def test_piped_the_run_prints_plain_events_and_on_failure_the_steps_last_lines(tmp_path, corrupt_source):
    result = run_cli(*run_args(tmp_path, corrupt_source, "piped"), timeout=600)
    # The step's own report (KFP's executor prints its traceback) comes first, then one line.
    assert result.returncode == 2
    assert last_error_line(result.stderr).startswith("error: run piped failed at step prepare-data: see ")
    log = tmp_path / "runs" / "piped" / "kfp-local.log"
    assert f"see {log}" in result.stderr and log.exists()
    assert "step prepare-data: running" in result.stdout
    assert "step prepare-data: failed in" in result.stdout
    assert "step prepare-data failed; its last" in result.stderr
    assert "magic" in result.stderr  # the step's own error line is among them
    both = result.stdout + result.stderr
    assert "\x1b[" not in both, "no ANSI codes when piped"
    assert "Warning" not in both and "executor_input" not in both, "KFP's log stays in the log file"
    assert "Executing task" in log.read_text()  # ... where it is whole


def test_on_a_terminal_the_run_shows_the_live_view(tmp_path, corrupt_source):
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *map(str, run_args(tmp_path, corrupt_source,
                                                                                           "tty"))],
                               cwd=REPO, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 600)
        if not ready:
            process.kill()
            pytest.fail("no output for 600 s")
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 2
    text = output.decode(errors="replace")
    assert "\x1b[" in text, "a terminal gets the live view's redraws and colours"
    assert "✗" in text and "prepare-data" in text and "failed" in text
    assert "step prepare-data failed; its last" in text
    assert "Executing task" not in text, "KFP's log stays in the log file"
