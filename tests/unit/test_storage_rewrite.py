"""Writing and rewriting a dataset artifact on gs:// and s3:// when the step dies part-way.

A write that dies leaves no metadata.json (the completion marker); a rewrite removes the old
marker first, so none is left over a mix of new and old arrays. On the real GCS emulator and
S3 server the other storage tests use.
"""

from __future__ import annotations

import pytest

from components.core import storage
from components.core.dataset import load_dataset
from components.core.errors import UserError
from components.data import DataSettings, prepare_dataset
from tests.conftest import die_at_upload


@pytest.mark.parametrize("bucket_fixture", ["gcs_bucket", "s3_bucket"])
def test_a_step_that_dies_mid_way_leaves_no_artifact_claiming_success(bucket_fixture, request, fmnist_dir,
                                                                      monkeypatch):
    uri = f"{request.getfixturevalue(bucket_fixture)}/data/broken"
    die_at_upload(monkeypatch, 3)
    with pytest.raises(ConnectionError):
        prepare_dataset(DataSettings(train_size=500, test_size=200), uri)
    written = storage.list_files(uri)
    assert len(written) == 2 and "metadata.json" not in written
    with pytest.raises(UserError, match="not a dataset artifact"):
        load_dataset(uri)


@pytest.mark.parametrize("bucket_fixture", ["gcs_bucket", "s3_bucket"])
def test_a_rewrite_that_dies_part_way_leaves_no_marker_over_mixed_arrays(bucket_fixture, request, fmnist_dir,
                                                                        monkeypatch):
    uri = f"{request.getfixturevalue(bucket_fixture)}/data/rewritten"
    prepare_dataset(DataSettings(train_size=500, test_size=200, seed=1), uri)
    assert storage.exists(storage.join(uri, "metadata.json"))
    die_at_upload(monkeypatch, 3)
    with pytest.raises(ConnectionError):
        prepare_dataset(DataSettings(train_size=600, test_size=300, seed=2), uri)
    assert not storage.exists(storage.join(uri, "metadata.json"))
    with pytest.raises(UserError, match="not a dataset artifact"):
        load_dataset(uri)


@pytest.mark.parametrize("bucket_fixture", ["gcs_bucket", "s3_bucket"])
def test_delete_removes_an_object_and_accepts_one_that_is_not_there(bucket_fixture, request):
    uri = f"{request.getfixturevalue(bucket_fixture)}/a/b.txt"
    storage.write_text(uri, "x")
    storage.delete(uri)
    assert not storage.exists(uri)
    storage.delete(uri)  # again: nothing there, no error
    with pytest.raises(UserError, match="bucket does not exist|no such bucket"):
        storage.delete(uri.replace(uri.split("/")[2], "no-such-bucket-here", 1))
