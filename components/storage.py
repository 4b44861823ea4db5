"""Artifact storage: every location is a local path or a ``gs://bucket/prefix`` URI.

Writes are atomic in both places: a local file is written to a temporary
sibling and renamed over the target; a GCS object only becomes visible once
its upload completes. So a step that dies half-way leaves no artifact that
claims success. Long work stages a local working folder (:class:`Workspace`)
and pushes finished files to the URI.

For tests and air-gapped clusters the google-cloud-storage client honours
``STORAGE_EMULATOR_HOST``; nothing here mocks it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from components.errors import UserError

GCS_SCHEME = "gs://"


def is_gcs(uri: str) -> bool:
    return str(uri).startswith(GCS_SCHEME)


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    rest = str(uri)[len(GCS_SCHEME):]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise UserError(f"{uri}: expected gs://BUCKET/PATH")
    return bucket, name.strip("/")


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a gs:// URI."""
    if is_gcs(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


# --------------------------------------------------------------------------- GCS

@functools.lru_cache(maxsize=1)
def _client():
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"),
                                  credentials=AnonymousCredentials())
        return storage.Client()
    except DefaultCredentialsError:
        raise UserError("no Google Cloud credentials found: set GOOGLE_APPLICATION_CREDENTIALS "
                        "or run where workload identity provides them") from None


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(120.0)


def _bucket(name: str):
    from google.api_core import exceptions as gexc

    client = _client()
    try:
        bucket = client.lookup_bucket(name, retry=_retry())
    except gexc.Forbidden:
        raise UserError(f"gs://{name}: access denied to the bucket") from None
    except gexc.GoogleAPICallError as err:
        raise UserError(f"gs://{name}: {err.message}") from None
    if bucket is None:
        raise UserError(f"gs://{name}: bucket does not exist")
    return bucket


def _blob(uri: str):
    bucket_name, name = split_gcs(uri)
    return _bucket(bucket_name).blob(name)


# ------------------------------------------------------------------- whole files

def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists(retry=_retry())
    return Path(uri).exists()


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        from google.api_core.exceptions import NotFound

        try:
            return _blob(uri).download_as_bytes(retry=_retry())
        except NotFound:
            raise UserError(f"{uri}: no such object") from None
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{uri}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{uri}: is a folder, expected a file") from None


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write all of ``data`` or nothing."""
    if is_gcs(uri):
        # A GCS upload is atomic: the object appears only when complete.
        _blob(uri).upload_from_string(data, retry=_retry())
        return
    path = Path(uri)
    _ensure_dir(path.parent)
    with atomic_local_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_local_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    ``suffix`` lets writers that insist on an extension (Keras: ``.keras``) use it.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files private; artifacts are meant to be read
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _ensure_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (PermissionError, NotADirectoryError, FileExistsError, OSError) as err:
        raise UserError(f"{path}: cannot create folder ({err.strerror or err})") from None


def upload_file(local: str | Path, uri: str) -> None:
    if is_gcs(uri):
        _blob(uri).upload_from_filename(str(local), retry=_retry())
        return
    target = Path(uri)
    _ensure_dir(target.parent)
    with atomic_local_path(target) as tmp:
        shutil.copyfile(local, tmp)


def download_file(uri: str, local: str | Path) -> Path:
    local = Path(local)
    _ensure_dir(local.parent)
    if is_gcs(uri):
        from google.api_core.exceptions import NotFound

        with atomic_local_path(local) as tmp:
            try:
                _blob(uri).download_to_filename(str(tmp), retry=_retry())
            except NotFound:
                raise UserError(f"{uri}: no such object") from None
        return local
    if not Path(uri).is_file():
        raise UserError(f"{uri}: no such file")
    with atomic_local_path(local) as tmp:
        shutil.copyfile(uri, tmp)
    return local


def list_files(uri: str) -> list[str]:
    """Relative names of every file under a folder/prefix (recursively), sorted."""
    if is_gcs(uri):
        bucket_name, prefix = split_gcs(uri)
        prefix = f"{prefix}/" if prefix else ""
        blobs = _client().list_blobs(_bucket(bucket_name), prefix=prefix, retry=_retry())
        return sorted(b.name[len(prefix):] for b in blobs if not b.name.endswith("/"))
    root = Path(uri)
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


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
    if is_gcs(uri):
        _bucket(split_gcs(uri)[0])
        return
    path = Path(uri)
    _ensure_dir(path)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        raise UserError(f"{uri}: output folder is not writable ({err.strerror or err})") from None


class Workspace:
    """A local working folder mirrored to an output URI.

    For a local URI the workspace *is* that folder. For ``gs://`` it is a
    scratch folder: :meth:`pull` fetches what an earlier attempt left (for
    resuming), :meth:`push` uploads named files after they are complete.
    """

    def __init__(self, uri: str, scratch: str | Path | None = None):
        self.uri = str(uri)
        if is_gcs(self.uri):
            self.local = Path(scratch or tempfile.mkdtemp(prefix="study-ws-"))
        else:
            self.local = Path(self.uri)
        check_writable(self.uri)
        self.local.mkdir(parents=True, exist_ok=True)

    @property
    def remote(self) -> bool:
        return is_gcs(self.uri)

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
