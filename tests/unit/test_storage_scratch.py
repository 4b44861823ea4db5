"""Scratch folders of remote workspaces: gone after the work, and swept when their owner died."""

import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from components.core import storage
from tests.conftest import REPO

# A process that opens a workspace on a remote URI, says where its scratch folder is, and waits.
HOLDER = """
import sys
from components.core import storage
ws = storage.Workspace(sys.argv[1])
ws.path("checkpoint").mkdir()
ws.path("checkpoint", "model.keras").write_bytes(b"x" * 1000)
print(ws.local, flush=True)
sys.stdin.readline()
"""


@pytest.fixture(params=["gcs", "s3"])
def bucket(request) -> str:
    """A new bucket on the GCS emulator or on the S3 server, this process and its children pointed at it."""
    return request.getfixturevalue(f"{request.param}_bucket")


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """A temp folder of its own, for this process (tempfile caches it) and for child processes."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _start_holder(uri: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, uri], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    line = proc.stdout.readline().strip()
    assert line, proc.communicate(timeout=30)
    return proc, Path(line)


def test_workspace_scratch_is_removed_when_the_workspace_is_done(bucket, temp_root):
    ws = storage.Workspace(f"{bucket}/trial")
    scratch = ws.local
    assert scratch.parent == temp_root and scratch.name.startswith("study-ws-")
    ws.path("big.bin").write_bytes(b"x" * 100_000)
    ws.push("big.bin")
    del ws
    gc.collect()
    assert not scratch.exists()
    with storage.Workspace(f"{bucket}/trial") as again:
        again.pull()
        assert again.path("big.bin").stat().st_size == 100_000
    assert list(temp_root.iterdir()) == []


def test_a_given_scratch_folder_is_the_callers_and_stays(bucket, tmp_path):
    with storage.Workspace(f"{bucket}/trial", scratch=tmp_path / "mine") as ws:
        ws.path("a.txt").write_text("a")
    assert (tmp_path / "mine" / "a.txt").read_text() == "a"


def test_scratch_is_removed_when_its_process_exits(bucket, temp_root):
    proc, scratch = _start_holder(f"{bucket}/trial")
    assert (scratch / "checkpoint" / "model.keras").exists()
    proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert not scratch.exists()


def test_stale_scratch_of_a_killed_process_is_swept_and_a_live_ones_kept(bucket, temp_root):
    killed, stale = _start_holder(f"{bucket}/killed")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert (stale / "checkpoint" / "model.keras").exists()  # what a SIGKILL leaves today
    alive, live = _start_holder(f"{bucket}/alive")
    try:
        # A new workspace (as the next trial makes on start) sweeps the dead owner's folder only.
        with storage.Workspace(f"{bucket}/next") as ws:
            assert ws.local.exists()
        assert not stale.exists()
        assert (live / "checkpoint" / "model.keras").exists()
    finally:
        alive.communicate("\n", timeout=30)
    assert not live.exists()


def test_sweep_leaves_other_folders_alone(bucket, temp_root):
    other = temp_root / "study-ws-not-ours"  # no owner lock, recent: may be another tool's, or in creation
    other.mkdir()
    unrelated = temp_root / "something-else"
    unrelated.mkdir()
    # Left by a version that took no lock, untouched for two days: nobody is using it.
    legacy = temp_root / "study-ws-legacy"
    (legacy / "checkpoint").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400
    os.utime(legacy / "checkpoint", (two_days_ago, two_days_ago))
    os.utime(legacy, (two_days_ago, two_days_ago))
    with storage.Workspace(f"{bucket}/next"):
        pass
    assert other.exists() and unrelated.exists()
    assert not legacy.exists()


def test_scratch_dir_for_other_caches(temp_root):
    """What the data step's cache can use: a folder removed at exit and swept if its owner died."""
    path = storage.scratch_dir("study-data-")
    assert path.parent == temp_root and path.name.startswith("study-data-")
    storage.release_scratch(path)
    assert not path.exists()


# A process inside an atomic write: half the file is on disk, and it waits to finish it.
WRITER = """
import sys
from pathlib import Path
from components.core import storage
with storage.atomic_local_path(Path(sys.argv[1]), suffix=".tmp.keras") as tmp:
    tmp.write_bytes(b"half a model")
    print(tmp, flush=True)
    sys.stdin.readline()
    tmp.write_bytes(b"a whole model")
"""


def _start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line, proc.communicate(timeout=30)
    return proc, Path(line)


def test_temporary_files_of_a_killed_writer_are_removed_on_start_and_a_live_ones_kept(tmp_path):
    out = tmp_path / "trial"
    (out / "checkpoint").mkdir(parents=True)
    killed, stale = _start_writer(out / "checkpoint" / "model.keras")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert stale.exists() and stale.name.startswith(".model.keras.")  # what a kill mid-save leaves
    alive, live = _start_writer(out / "other.keras")
    try:
        storage.Workspace(str(out))  # a trial starting again on its folder
        assert not stale.exists()
        assert live.exists()
    finally:
        alive.communicate("\n", timeout=30)
    assert (out / "other.keras").read_bytes() == b"a whole model"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["other.keras"]


def test_own_pid_temporary_not_being_written_is_stale(tmp_path):
    """A container restarted in place gives its new process the old pid: the name alone can't tell."""
    from components.core.storage import _local

    leftover = tmp_path / f".model.keras.{_local._TAG}{os.getpid()}-abcd1234.tmp.keras"
    leftover.write_bytes(b"half")
    with storage.atomic_local_path(tmp_path / "state.json") as tmp:
        tmp.write_text("{}")
        assert storage.remove_stale_temporaries(tmp_path) == [leftover]
        assert tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
