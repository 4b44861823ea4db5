"""Storage failures a user meets, each one line: bad bucket names, unreachable hosts, a full disk."""

import errno
import subprocess
import time

import pytest

from components.core import storage
from components.core.errors import UserError
from tests.conftest import free_port

# Bucket-name rules: Cloud Storage, https://cloud.google.com/storage/docs/buckets#naming ;
# S3 general purpose buckets, https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BAD_NAMES = [
    ("gs://Bad_Bucket!/a.txt", "Bad_Bucket!"),
    ("gs://ab/a.txt", "ab"),
    ("gs://-leading-dash/a.txt", "-leading-dash"),
    ("gs://192.168.5.4/a.txt", "192.168.5.4"),
    (f"gs://{'x' * 64}/a.txt", "x" * 64),
    ("s3://Bad_Bucket!/a.txt", "Bad_Bucket!"),
    ("s3://under_score/a.txt", "under_score"),  # allowed by Cloud Storage, not by S3
    ("s3://two..dots/a.txt", "two..dots"),
    ("s3://xn--reserved/a.txt", "xn--reserved"),
    ("s3:///a.txt", ""),
    ("gs://", ""),
]


@pytest.mark.parametrize("uri, bucket", BAD_NAMES)
def test_invalid_bucket_name_is_one_line_naming_it(uri, bucket, gcs_env, s3_env):
    with pytest.raises(UserError) as caught:
        storage.write_text(uri, "x")
    message = str(caught.value)
    assert "\n" not in message
    assert f"bucket name '{bucket}'" in message and "expected" in message, message


def test_valid_bucket_names_pass_the_check(gcs_env, s3_env):
    # Cloud Storage allows underscores and dotted names up to 222 characters; both reach the server.
    dotted = ".".join(["a" * 60] * 3)
    for uri in ("gs://under_score/a.txt", f"gs://{dotted}/a.txt", "s3://my.bucket-1/a.txt"):
        with pytest.raises(UserError, match="bucket does not exist"):
            storage.write_text(uri, "x")


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_unreachable_storage_host_fails_within_the_deadline(scheme, monkeypatch, no_aws_env):
    closed = f"http://127.0.0.1:{free_port()}"  # bound once, then closed: nothing listens there
    if scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", closed)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        storage._client.cache_clear()
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("STUDY_STORAGE_TIMEOUT_S", "3")
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        storage.write_text(f"{scheme}://some-bucket/a.txt", "x")
    elapsed = time.monotonic() - start
    storage._client.cache_clear()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{scheme}://some-bucket: cannot reach the storage service at {closed}"), message
    assert "within 3 s (STUDY_STORAGE_TIMEOUT_S)" in message, message
    # It kept trying for most of the deadline (a refused connection is retried), and no longer.
    assert 1.0 <= elapsed <= 3.0 + 1.5, elapsed


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_bad_storage_timeout_setting_is_refused(value, s3_env, monkeypatch):
    monkeypatch.setenv("STUDY_STORAGE_TIMEOUT_S", value)
    with pytest.raises(UserError, match=rf"^STUDY_STORAGE_TIMEOUT_S='{value}': expected a positive number of seconds"):
        storage.exists("s3://some-bucket/a.txt")


# ----------------------------------------------------------------- disk full

class _FullDisk:
    """A file object that takes some bytes, then fails as a full disk does (errno 28)."""

    def __init__(self, path, room: int):
        self.file = open(path, "wb")  # noqa: SIM115 - closed by the writer below
        self.room = room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.file.write(data[:self.room])
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)


def test_disk_full_during_an_atomic_write_leaves_nothing_and_says_so(tmp_path):
    target = tmp_path / "x_test.npy"
    target.write_bytes(b"old")
    with pytest.raises(UserError) as caught:
        with storage.atomic_local_path(target) as tmp:
            disk = _FullDisk(tmp, room=100)
            try:
                disk.write(b"\x93NUMPY" * 1000)
            finally:
                disk.file.close()
    message = str(caught.value)
    assert message == f"{target}: no space left on device; nothing was written", message
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x_test.npy"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB file system (tmpfs): writing more than that fails with ENOSPC."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_real_full_disk_leaves_no_partial_file(tiny_disk, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * 200_000)
    for write in (lambda: storage.write_bytes(str(tiny_disk / "out" / "x_test.npy"), big.read_bytes()),
                  lambda: storage.upload_file(big, str(tiny_disk / "out" / "x_test.npy")),
                  lambda: storage.download_file(str(big), tiny_disk / "out" / "x_test.npy")):
        with pytest.raises(UserError, match=r"x_test.npy: no space left on device; nothing was written$"):
            write()
        assert storage.list_files(str(tiny_disk)) == []


def test_numpy_short_write_on_a_full_disk_is_one_line_too(tiny_disk):
    """np.save reports a full disk as 'N requested and M written' with no errno (numpy's tofile)."""
    import numpy as np

    target = tiny_disk / "x_test.npy"
    with pytest.raises(UserError, match=r"x_test.npy: no space left on device; nothing was written$"):
        with storage.atomic_local_path(target, suffix=".tmp.npy") as tmp:
            np.save(tmp, np.zeros(200_000, dtype=np.uint8))
    assert list(tiny_disk.iterdir()) == []


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    with pytest.raises(OSError, match="requested and"):
        with storage.atomic_local_path(tmp_path / "x.npy") as tmp:
            tmp.write_bytes(b"x")
            raise OSError("10 requested and 5 written")  # plenty of room here: not a full disk
    assert list(tmp_path.iterdir()) == []
