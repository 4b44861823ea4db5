"""Artifact storage: every location is a local path, a ``gs://bucket/prefix`` or an ``s3://bucket/prefix`` URI.

Writes are atomic everywhere: a local file is written to a temporary sibling and
renamed over the target (a full disk leaves nothing and says so in one line); an
object only becomes visible once its upload completes. So a step that dies half-way
leaves no artifact that claims success. Long work stages a local working folder
(:class:`Workspace`) and pushes finished files to the URI.

Schemes live one per module (``_gcs.py``, ``_s3.py``, on the base in ``_remote.py``);
their clients are imported only when a URI of theirs is used. Settings: ``STORAGE_EMULATOR_HOST``
(a GCS emulator), ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (MinIO or another S3-API
server), and ``STUDY_STORAGE_TIMEOUT_S`` (how long one call may try to reach its service).
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

from components.core.errors import UserError
from components.core.storage._gcs import STORE as _GCS
from components.core.storage._gcs import _blob, _client  # noqa: F401 - tests reach the GCS client through these
from components.core.storage._local import atomic_local_path, ensure_dir, remove_stale_temporaries
from components.core.storage._local import check_writable as _check_local
from components.core.storage._local import list_files as _list_local
from components.core.storage._local import read_bytes as _read_local
from components.core.storage._remote import RemoteStore
from components.core.storage._s3 import STORE as _S3
from components.core.storage._scratch import release_scratch, scratch_dir

__all__ = ["Workspace", "atomic_local_path", "check_writable", "download_dir", "download_file", "exists",
           "is_gcs", "is_remote", "is_s3", "join", "list_files", "read_bytes", "read_text", "release_scratch",
           "remove_stale_temporaries", "scratch_dir", "upload_dir", "upload_file", "write_bytes", "write_text"]

GCS_SCHEME = _GCS.scheme
S3_SCHEME = _S3.scheme
_STORES: tuple[RemoteStore, ...] = (_GCS, _S3)


def _remote(uri: str) -> tuple[RemoteStore, str, str] | None:
    """The store, bucket and object name of a remote URI; None for a local path."""
    for store in _STORES:
        if store.owns(uri):
            return (store, *store.split(uri))
    return None


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names object storage (``gs://`` or ``s3://``) rather than a local path."""
    return any(store.owns(uri) for store in _STORES)


def is_s3(uri: str) -> bool:
    return _S3.owns(uri)


# Callers written before s3:// ask ``is_gcs`` whether a URI is remote, and every one of them
# (data, transfer, nas) means "fetch it / push to it", which holds for s3:// too. New code: is_remote.
is_gcs = is_remote


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    return _GCS.split(uri)


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a remote URI."""
    if is_remote(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


# ------------------------------------------------------------------- whole files

def exists(uri: str) -> bool:
    remote = _remote(uri)
    if remote:
        store, bucket, name = remote
        return store.exists(bucket, name)
    return Path(uri).exists()


def read_bytes(uri: str) -> bytes:
    remote = _remote(uri)
    if remote:
        store, bucket, name = remote
        return store.read_bytes(bucket, name)
    return _read_local(uri)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write all of ``data`` or nothing."""
    remote = _remote(uri)
    if remote:
        store, bucket, name = remote
        store.write_bytes(bucket, name, data)
        return
    path = Path(uri)
    ensure_dir(path.parent)
    with atomic_local_path(path) as tmp:
        tmp.write_bytes(data)


def delete(uri: str) -> None:
    """Remove one file or object; one that is not there is not an error."""
    remote = _remote(uri)
    if remote:
        store, bucket, name = remote
        store.delete(bucket, name)
        return
    Path(uri).unlink(missing_ok=True)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def upload_file(local: str | Path, uri: str) -> None:
    remote = _remote(uri)
    if remote:
        store, bucket, name = remote
        store.upload_file(Path(local), bucket, name)
        return
    target = Path(uri)
    ensure_dir(target.parent)
    with atomic_local_path(target) as tmp:
        shutil.copyfile(local, tmp)


def download_file(uri: str, local: str | Path) -> Path:
    local = Path(local)
    remote = _remote(uri)
    if remote is None and not Path(uri).is_file():
        raise UserError(f"{uri}: no such file")
    ensure_dir(local.parent)
    with atomic_local_path(local) as tmp:
        if remote:
            store, bucket, name = remote
            store.download_file(bucket, name, tmp)
        else:
            shutil.copyfile(uri, tmp)
    return local


def list_files(uri: str) -> list[str]:
    """Relative names of every file under a folder/prefix (recursively), sorted."""
    remote = _remote(uri)
    if remote is None:
        return _list_local(uri)
    store, bucket, prefix = remote
    prefix = f"{prefix}/" if prefix else ""
    return sorted(name[len(prefix):] for name in store.list_names(bucket, prefix) if not name.endswith("/"))


def upload_dir(local: str | Path, uri: str) -> None:
    """Copy every file under ``local`` to ``uri``; the last file written is the caller's marker."""
    local = Path(local)
    for rel in list_files(str(local)):
        upload_file(local / rel, join(uri, rel))


def download_dir(uri: str, local: str | Path) -> Path:
    local = Path(local)
    for rel in list_files(uri):
        download_file(join(uri, rel), local / rel)
    return local


def check_writable(uri: str) -> None:
    """Fail early, with one line, when an output location cannot be written."""
    remote = _remote(uri)
    if remote:
        store, bucket, _ = remote
        store.check_bucket(bucket)
        return
    _check_local(uri)


class Workspace:
    """A local working folder mirrored to an output URI.

    For a local URI the workspace *is* that folder. For a remote one it is a scratch
    folder: :meth:`pull` fetches what an earlier attempt left (for resuming), :meth:`push`
    uploads named files after they are complete. A scratch folder made here (no ``scratch``
    given) is removed when the workspace is closed or dropped, or its process exits, and
    swept by a later process if this one is killed (see ``_scratch``): the URI holds
    everything worth keeping. A local or given folder is kept, but the temporary files a
    killed writer left in it (a checkpoint half-saved) are removed on start.
    """

    def __init__(self, uri: str, scratch: str | Path | None = None):
        self.uri = str(uri)
        check_writable(self.uri)  # first: a location that cannot be written leaves no scratch behind
        self._release = None
        if not self.remote:
            self.local = Path(self.uri)
        elif scratch:
            self.local = Path(scratch)
        else:
            self.local = scratch_dir("study-ws-")
            self._release = weakref.finalize(self, release_scratch, self.local)
        self.local.mkdir(parents=True, exist_ok=True)
        if self._release is None:
            remove_stale_temporaries(self.local)

    @property
    def remote(self) -> bool:
        return is_remote(self.uri)

    def path(self, *parts: str) -> Path:
        return self.local.joinpath(*parts)

    def pull(self) -> None:
        if self.remote:
            download_dir(self.uri, self.local)

    def push(self, *relative_names: str) -> None:
        if not self.remote:
            return
        for rel in relative_names:
            src = self.local / rel
            if src.is_dir():
                upload_dir(src, join(self.uri, rel))
            elif src.exists():
                upload_file(src, join(self.uri, rel))

    def close(self) -> None:
        """Remove the scratch folder this workspace made (a no-op for a local or given folder)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
