"""``s3://``: Amazon S3 and S3-API servers (MinIO, which KFP itself uses on kind and on premises), via boto3.

The endpoint is boto3's own setting: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``
(unset: AWS itself). With an endpoint set, buckets are addressed by path, as MinIO expects.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
a profile, a pod's web identity). An S3 PUT, and a multipart upload, are atomic: the object
appears only once complete. Each call retries lost connections and server errors for at
most ``STUDY_STORAGE_TIMEOUT_S``; botocore's own retries are off so that deadline holds.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from components.core.errors import UserError
from components.core.storage._remote import RemoteStore, connect_timeout_s, deadline_s, is_ip_address

ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# What boto3 reads when it makes a client: a new value makes a new client.
_CLIENT_ENV = (*ENDPOINT_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
               "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets)
_CHARS = re.compile(r"^[a-z0-9.-]+$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Answers worth another try: the server is busy or failed, not the request.
_RETRY_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                "ServiceUnavailable", "RequestTimeTooSkewed"}


def endpoint() -> str | None:
    return next((os.environ[name] for name in ENDPOINT_ENV if os.environ.get(name)), None)


@functools.lru_cache(maxsize=4)
def _client_for(settings: tuple, deadline: float):
    import boto3
    from botocore.config import Config

    url = endpoint()
    config = Config(connect_timeout=connect_timeout_s(deadline), read_timeout=max(deadline, 60.0),
                    retries={"total_max_attempts": 1},
                    s3={"addressing_style": "path"} if url else None)
    return boto3.session.Session().client("s3", endpoint_url=url, config=config)


def _client():
    return _client_for(tuple(os.environ.get(name) for name in _CLIENT_ENV), deadline_s())


def _code(err) -> tuple[str, int]:
    """The S3 error code and HTTP status of a botocore ClientError."""
    response = getattr(err, "response", {}) or {}
    return (str(response.get("Error", {}).get("Code", "")),
            int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0))


class S3Store(RemoteStore):
    scheme = "s3://"
    service = "S3"

    def bucket_name_problem(self, name: str) -> str | None:
        if not _CHARS.match(name):
            return "only lowercase letters, digits, dots and hyphens"
        if not (name[0].isalnum() and name[-1].isalnum()):
            return "a letter or digit first and last"
        if not 3 <= len(name) <= 63:
            return "3-63 characters"
        if ".." in name:
            return "no two adjacent dots"
        if is_ip_address(name):
            return "a name, not an IP address"
        if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
            return f"none of the reserved prefixes {', '.join(_RESERVED_PREFIXES)} or suffixes " \
                   f"{', '.join(_RESERVED_SUFFIXES)}"
        return None

    def _call(self, bucket: str, fn, missing: str | None = None):
        """Run ``fn(client)`` until it succeeds, fails for good, or the deadline leaves no room to retry."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        deadline = deadline_s()
        give_up = time.monotonic() + deadline
        pause = 0.2
        while True:
            try:
                try:
                    return fn(_client())
                except S3UploadFailedError as err:  # boto3 wraps the ClientError of an upload
                    raise (err.__context__ or err) from None
            except NoCredentialsError:
                raise UserError(f"s3://{bucket}: no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY (MinIO: its access and secret key), or AWS_PROFILE, "
                                "or run where the pod's identity provides them") from None
            except PartialCredentialsError as err:
                raise UserError(f"s3://{bucket}: {err}") from None
            except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError,
                    ResponseStreamingError) as err:
                last, server_failed = err, False
            except ClientError as err:
                code, status = _code(err)
                if status >= 500 or code in _RETRY_CODES:
                    last, server_failed = err, True
                else:
                    raise self._refusal(bucket, code, status, err, missing) from None
            # The last attempt starts when one connection attempt still fits before the deadline.
            wait = min(pause, give_up - connect_timeout_s(deadline) - time.monotonic())
            if wait < 0:
                where = endpoint() or "AWS"
                if server_failed:
                    raise UserError(f"s3://{bucket}: the storage service at {where} kept failing for "
                                    f"{deadline:g} s (STUDY_STORAGE_TIMEOUT_S): {last}") from None
                raise self.unreachable(bucket, where, deadline, last) from None
            time.sleep(wait)
            pause = min(pause * 2, 2.0)

    def _refusal(self, bucket: str, code: str, status: int, err, missing: str | None) -> UserError:
        if code in ("NoSuchBucket",):
            return UserError(f"s3://{bucket}: bucket does not exist")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return UserError(missing or f"s3://{bucket}: bucket does not exist")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return UserError(f"s3://{bucket}: the storage service refused the credentials ({code})")
        if code in ("AccessDenied", "403", "Forbidden") or status == 403:
            return UserError(f"s3://{bucket}: access denied to the bucket")
        message = getattr(err, "response", {}).get("Error", {}).get("Message") or str(err)
        return UserError(f"s3://{bucket}: {code or status}: {message}")

    def check_bucket(self, bucket: str) -> None:
        self._call(bucket, lambda s3: s3.head_bucket(Bucket=bucket))

    def exists(self, bucket: str, name: str) -> bool:
        # HEAD answers a bare 404 for a missing bucket too: ask about the bucket to tell them apart.
        gone = f"s3://{bucket}/{name}: no such object"
        try:
            self._call(bucket, lambda s3: s3.head_object(Bucket=bucket, Key=name), missing=gone)
        except UserError as err:
            if str(err) != gone:
                raise
            self.check_bucket(bucket)
            return False
        return True

    def read_bytes(self, bucket: str, name: str) -> bytes:
        return self._call(bucket, lambda s3: s3.get_object(Bucket=bucket, Key=name)["Body"].read(),
                          missing=f"s3://{bucket}/{name}: no such object")

    def write_bytes(self, bucket: str, name: str, data: bytes) -> None:
        self._call(bucket, lambda s3: s3.put_object(Bucket=bucket, Key=name, Body=data))

    def delete(self, bucket: str, name: str) -> None:
        # S3 answers 204 whether or not the key exists.
        self._call(bucket, lambda s3: s3.delete_object(Bucket=bucket, Key=name))

    def upload_file(self, local: Path, bucket: str, name: str) -> None:
        # Above 8 MiB boto3 uploads in parts; the object appears when the last part is joined,
        # and boto3 aborts the upload (no parts kept) when one fails.
        self._call(bucket, lambda s3: s3.upload_file(str(local), bucket, name))

    def download_file(self, bucket: str, name: str, local: Path) -> None:
        def fetch(s3):
            body = s3.get_object(Bucket=bucket, Key=name)["Body"]
            with open(local, "wb") as out:  # "wb": a retry starts the file again
                shutil.copyfileobj(body, out, 1 << 20)

        self._call(bucket, fetch, missing=f"s3://{bucket}/{name}: no such object")

    def list_names(self, bucket: str, prefix: str) -> Iterable[str]:
        def names(s3):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

        return self._call(bucket, names)


STORE = S3Store()
