"""Local files: atomic writes (a temporary sibling renamed over the target), and a full disk said plainly."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from components.core.errors import UserError

# A write that runs out of room: the device is full, or the user's quota is.
_NO_ROOM = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


# A temporary file's name says which process writes it (host and pid), so that a later process
# can tell one left by a killed writer from one being written now (see remove_stale_temporaries).
_HOST = re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname()) or "host"
_TAG = f"study-tmp-{_HOST}-"
_in_flight: set[Path] = set()  # this process's temporary files, while their writes run


# Below this much free space, a write error without an errno is taken for a full disk.
_NEARLY_FULL_BYTES = 1 << 20


def no_room_error(path: str | Path, err: OSError) -> UserError | None:
    """The one-line error for a write that ran out of room, or None for any other OSError."""
    reason = _NO_ROOM.get(err.errno)
    if reason is None and err.errno is None and _nearly_full(Path(path).parent):
        # numpy's array.tofile (np.save) reports a short write as "N requested and M written",
        # without the errno; the disk it wrote to tells what happened.
        reason = "no space left on device"
    return UserError(f"{path}: {reason}; nothing was written") if reason else None


def _nearly_full(folder: Path) -> bool:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < _NEARLY_FULL_BYTES


# mkstemp creates files readable by the owner only; artifacts get the mode any other file this
# process writes would (0o644 under the usual umask 022).
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_local_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    ``suffix`` lets writers that insist on an extension (Keras: ``.keras``) use it. Whatever
    fails inside, the temporary file is removed, so a failed write leaves the old ``path``
    (or nothing) and no partial file; running out of disk space becomes a one-line error.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{_TAG}{os.getpid()}-", suffix=suffix,
                                        dir=path.parent)
    except OSError as err:
        problem = no_room_error(path, err)
        if problem is None:
            raise
        raise problem from None
    os.close(fd)
    tmp = Path(tmp_name)
    _in_flight.add(tmp)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes files private; artifacts are meant to be read
        os.replace(tmp, path)
    except OSError as err:
        problem = no_room_error(path, err)
        if problem is None:
            raise
        raise problem from None
    finally:
        _in_flight.discard(tmp)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporary files under ``folder`` that a killed writer on this host left; return them.

    A file is stale when the process its name gives is gone, or is this process but not
    writing it (a container restarted in place reuses its pids). Files from other hosts (a
    volume shared between pods) are left alone: their writers cannot be asked.
    """
    pattern = re.compile(rf"^\..+\.{re.escape(_TAG)}(\d+)-")
    removed = []
    for parent, _, names in os.walk(folder):
        for name in names:
            match = pattern.match(name)
            if not match:
                continue
            path = Path(parent, name)
            if not _writer_alive(int(match.group(1)), path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _writer_alive(pid: int, path: Path) -> bool:
    if pid == os.getpid():
        return path in _in_flight
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def ensure_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{path}: cannot create folder ({err.strerror or err})") from None


def read_bytes(uri: str) -> bytes:
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{uri}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{uri}: is a folder, expected a file") from None


def list_files(uri: str) -> list[str]:
    root = Path(uri)
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def check_writable(uri: str) -> None:
    path = Path(uri)
    ensure_dir(path)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        raise UserError(f"{uri}: output folder is not writable ({err.strerror or err})") from None
