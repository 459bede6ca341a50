"""The /v2 protocol suite (test_protocol.py) again, with blobs in a bucket of a
real MinIO (tests/s3.py): both storage paths pass the same tests."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, RegistryClient, basic
from tests.s3 import new_bucket_name, shared_minio

from .test_protocol import *  # noqa: F403 - every test of the suite, collected here too

pytestmark = pytest.mark.live  # MinIO


@pytest.fixture
def v2(test_projects, settings) -> RegistryClient:
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "registry.storage.s3.S3BlobStore",
            "OPTIONS": shared_minio().store_options(new_bucket_name(), location="registry"),
        },
    }
    return RegistryClient(HTTP_AUTHORIZATION=basic(*ADMIN))


def test_blobs_are_in_the_bucket(v2):
    from registry.storage import blob_store
    from registry.storage.s3 import S3BlobStore

    assert isinstance(blob_store(), S3BlobStore)
