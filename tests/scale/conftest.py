from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import ADMIN

from .cluster import Cluster, temp_work

PROJECTS = ["scale"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three replicas on one PostgreSQL, MinIO and Redis, behind haproxy; shared
    by the module's tests (each works in repositories of its own)."""
    work = temp_work()
    cluster = Cluster(work)
    try:
        cluster.start()
        for name in PROJECTS:
            r = requests.post(
                f"{cluster.url}/api/v2.0/projects",
                json={"project_name": name, "metadata": {"public": "false"}},
                auth=ADMIN,
                timeout=30,
            )
            assert r.status_code == 201, r.text
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
