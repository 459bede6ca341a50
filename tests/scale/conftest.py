from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.conftest import ADMIN
from tests.deploy import IMAGE_BUILD_TIMEOUT

from .cluster import Cluster, ContainerReplica, ProcessReplica, Replica, temp_work

PROJECTS = ["scale"]


@pytest.fixture(
    scope="module",
    params=[
        "process",
        # Berth's image, built once per session (tests/deploy.py): needs docker,
        # and time for a cold build.
        pytest.param(
            "container",
            marks=[pytest.mark.clients, pytest.mark.timeout(IMAGE_BUILD_TIMEOUT + 600)],
        ),
    ],
)
def cluster(request) -> Iterator[Cluster]:
    """Three replicas on one PostgreSQL, MinIO and Redis, behind haproxy; shared
    by the module's tests (each works in repositories of its own). Replicas run
    as processes, then as containers of Berth's image."""
    launcher: Callable[..., Replica] = ProcessReplica
    if request.param == "container":
        docker = request.getfixturevalue("deploy_docker")
        launcher = functools.partial(
            ContainerReplica, docker, request.getfixturevalue("berth_image")
        )
    work = temp_work()
    cluster = Cluster(work)
    try:
        cluster.start(launcher)
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
