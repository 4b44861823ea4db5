"""What every object store here shares: URIs, bucket-name checks, and the deadline for reaching it.

One subclass per scheme (``_gcs.py``, ``_s3.py``). Each keys its objects by bucket and name,
writes whole objects only (an object appears when its upload completes, never in part), and
turns its client's failures into one-line :class:`UserError` messages naming the bucket.
"""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from components.core.errors import UserError

TIMEOUT_ENV = "STUDY_STORAGE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 30.0
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def deadline_s() -> float:
    """How long one storage call may keep trying to reach its service (``STUDY_STORAGE_TIMEOUT_S``)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    return value


def connect_timeout_s(deadline: float) -> float:
    """One connection attempt's limit: a few attempts fit in the deadline, and none outlasts it."""
    return max(0.1, min(10.0, deadline / 3))


def _transport_reason(err: BaseException) -> str:
    """A few words for why a connection failed, from the innermost cause that says it."""
    seen = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError) or "timeout" in type(seen).__name__.lower():
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    return type(err).__name__


class RemoteStore(ABC):
    scheme: str  # "gs://"
    service: str  # "Cloud Storage", for messages

    def owns(self, uri: str) -> bool:
        return str(uri).startswith(self.scheme)

    def split(self, uri: str) -> tuple[str, str]:
        """``gs://bucket/a/b`` -> ``("bucket", "a/b")``, refusing a bucket name the service would."""
        bucket, _, name = str(uri)[len(self.scheme):].partition("/")
        if not bucket:
            raise UserError(f"{uri}: bucket name '' is empty: expected {self.scheme}BUCKET/PATH")
        problem = self.bucket_name_problem(bucket)
        if problem:
            raise UserError(f"{uri}: bucket name '{bucket}' is not valid for {self.service}: expected {problem}")
        return bucket, name.strip("/")

    @abstractmethod
    def bucket_name_problem(self, name: str) -> str | None:
        """What a valid name would be, where ``name`` breaks the service's naming rules."""

    def unreachable(self, bucket: str, endpoint: str, deadline: float, err: BaseException) -> UserError:
        return UserError(f"{self.scheme}{bucket}: cannot reach the storage service at {endpoint} within "
                         f"{deadline:g} s ({TIMEOUT_ENV}): {_transport_reason(err)}")

    # Every method below takes a bucket already checked by split().
    @abstractmethod
    def check_bucket(self, bucket: str) -> None:
        """Fail with one line unless the bucket exists and may be used."""

    @abstractmethod
    def exists(self, bucket: str, name: str) -> bool: ...

    @abstractmethod
    def read_bytes(self, bucket: str, name: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, bucket: str, name: str, data: bytes) -> None: ...

    @abstractmethod
    def delete(self, bucket: str, name: str) -> None:
        """Remove the object; an object that is not there is not an error."""

    @abstractmethod
    def upload_file(self, local: Path, bucket: str, name: str) -> None: ...

    @abstractmethod
    def download_file(self, bucket: str, name: str, local: Path) -> None:
        """Write the object to ``local`` (a temporary path the caller renames on success)."""

    @abstractmethod
    def list_names(self, bucket: str, prefix: str) -> Iterable[str]:
        """Every object name that starts with ``prefix``."""


def is_ip_address(name: str) -> bool:
    return bool(_IP_ADDRESS.match(name))
