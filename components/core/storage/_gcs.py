"""``gs://``: Google Cloud Storage through google-cloud-storage.

For tests and air-gapped clusters the client honours ``STORAGE_EMULATOR_HOST`` (then with
anonymous credentials); nothing here mocks it. A GCS upload is atomic: the object appears
only once complete. Each call retries what the client deems retryable, for at most
``STUDY_STORAGE_TIMEOUT_S`` (see ``_remote.deadline_s``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

from components.core.errors import UserError
from components.core.storage._remote import RemoteStore, connect_timeout_s, deadline_s, is_ip_address

# https://cloud.google.com/storage/docs/buckets#naming
_CHARS = re.compile(r"^[a-z0-9._-]+$")


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


def _endpoint() -> str:
    return os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"


def _limits() -> dict:
    """``retry`` and ``timeout`` for one call: the retries stop in time for a last attempt to end."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    deadline = deadline_s()
    connect = connect_timeout_s(deadline)
    # Short pauses between tries, so that the client gives up near the deadline, not long before
    # it. A read may be slow on a big object; only reaching the service is bounded by the deadline.
    retry = DEFAULT_RETRY.with_delay(initial=0.1, maximum=connect / 2, multiplier=2.0)
    return {"retry": retry.with_timeout(max(deadline - connect, 0.1)),
            "timeout": (connect, max(deadline, 60.0))}


class GcsStore(RemoteStore):
    scheme = "gs://"
    service = "Cloud Storage"

    def bucket_name_problem(self, name: str) -> str | None:
        if not _CHARS.match(name):
            return "only lowercase letters, digits, dashes, underscores and dots"
        if not (name[0].isalnum() and name[-1].isalnum()):
            return "a letter or digit first and last"
        if "." in name:
            if len(name) > 222 or any(not 1 <= len(part) <= 63 for part in name.split(".")):
                return "at most 222 characters, each dot-separated part 1-63"
        if not 3 <= len(name) <= (222 if "." in name else 63):
            return "3-63 characters"
        if is_ip_address(name):
            return "a name, not an IP address"
        if name.startswith("goog"):
            return "a name that does not start with 'goog'"
        return None

    def _call(self, bucket: str, fn, missing: str | None = None):
        """Run one client call; its failures become one line naming the bucket."""
        import requests
        from google.api_core import exceptions as gexc

        try:
            return fn(_limits())
        except gexc.NotFound:
            if missing is None:
                raise UserError(f"gs://{bucket}: bucket does not exist") from None
            raise UserError(missing) from None
        except gexc.Forbidden:
            raise UserError(f"gs://{bucket}: access denied to the bucket") from None
        except gexc.RetryError as err:
            raise self.unreachable(bucket, _endpoint(), deadline_s(), err.cause or err) from None
        except (requests.ConnectionError, requests.Timeout) as err:
            raise self.unreachable(bucket, _endpoint(), deadline_s(), err) from None
        except gexc.GoogleAPICallError as err:
            raise UserError(f"gs://{bucket}: {err.message}") from None

    def _bucket(self, name: str):
        bucket = self._call(name, lambda kw: _client().lookup_bucket(name, **kw))
        if bucket is None:
            raise UserError(f"gs://{name}: bucket does not exist")
        return bucket

    def blob(self, bucket: str, name: str):
        return self._bucket(bucket).blob(name)

    def check_bucket(self, bucket: str) -> None:
        self._bucket(bucket)

    def exists(self, bucket: str, name: str) -> bool:
        blob = self.blob(bucket, name)
        return self._call(bucket, lambda kw: blob.exists(**kw))

    def read_bytes(self, bucket: str, name: str) -> bytes:
        blob = self.blob(bucket, name)
        return self._call(bucket, lambda kw: blob.download_as_bytes(**kw),
                          missing=f"gs://{bucket}/{name}: no such object")

    def write_bytes(self, bucket: str, name: str, data: bytes) -> None:
        blob = self.blob(bucket, name)
        self._call(bucket, lambda kw: blob.upload_from_string(data, **kw))

    def delete(self, bucket: str, name: str) -> None:
        from google.api_core import exceptions as gexc

        blob = self.blob(bucket, name)

        def remove(kw) -> None:
            try:
                blob.delete(**kw)
            except gexc.NotFound:  # no such object is fine; no such bucket is not
                self.check_bucket(bucket)

        self._call(bucket, remove)

    def upload_file(self, local: Path, bucket: str, name: str) -> None:
        blob = self.blob(bucket, name)
        self._call(bucket, lambda kw: blob.upload_from_filename(str(local), **kw))

    def download_file(self, bucket: str, name: str, local: Path) -> None:
        blob = self.blob(bucket, name)
        self._call(bucket, lambda kw: blob.download_to_filename(str(local), **kw),
                   missing=f"gs://{bucket}/{name}: no such object")

    def list_names(self, bucket: str, prefix: str) -> Iterable[str]:
        handle = self._bucket(bucket)
        return self._call(bucket, lambda kw: [b.name for b in _client().list_blobs(handle, prefix=prefix, **kw)])


STORE = GcsStore()


def _blob(uri: str):
    """The client's blob for a ``gs://`` URI (tests use it to change objects behind the code's back)."""
    return STORE.blob(*STORE.split(uri))
