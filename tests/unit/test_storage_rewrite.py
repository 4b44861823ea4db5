"""Rewriting a dataset artifact in place on gs:// and s3://: the old marker goes first.

A rewrite that dies part-way must leave no metadata.json over a mix of new and old arrays,
on the real GCS emulator and S3 server the other storage tests use.
"""

from __future__ import annotations

import pytest

from components import storage
from components.data import DataSettings, load_dataset, prepare_dataset
from components.errors import UserError
from tests.conftest import die_at_upload


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
