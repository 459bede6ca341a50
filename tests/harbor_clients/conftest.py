from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import BerthServer
from tests.registry.helpers import NOTATION, Remote, artifact, chart, sha256

# What every client does with the pushed artifact, in this order.
ARTIFACT_OPERATIONS = [
    "artifact.list",
    "artifact.get",
    "tag.create",
    "tag.list",
    "tag.delete",
    "artifact.copy",
]


# The image of the ``attached`` project: its config's build history.
HISTORY = [{"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"}]
VALUES = b"replicas: 2\n"


@dataclass(frozen=True)
class HarborTarget:
    """A live Berth for one client's run: ``content`` holds ``app:v1``;
    ``attached`` holds ``app:v1`` (with a build history and a notation
    signature as its referrer) and the Helm chart ``chart:0.1.0``."""

    server: BerthServer
    content: str
    attached: str = "attached"


@pytest.fixture(scope="module")
def harbor_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarborTarget]:
    """A Berth of the module's own: the clients change system settings."""
    server = BerthServer(tmp_path_factory.mktemp("harbor-client") / "data").start()
    server.create_projects(["content", "attached"])
    remote = Remote(server.url)
    remote.push_image("content/app", "v1")
    config = json.dumps({"architecture": "amd64", "os": "linux", "history": HISTORY}).encode()
    _, subject = remote.push_image("attached/app", "v1", config=config)
    signature, blobs = artifact(subject, NOTATION, b"signature")
    remote.push("attached/app", sha256(signature), signature, blobs)
    remote.push("attached/chart", "0.1.0", *chart({"chart/values.yaml": VALUES}))
    yield HarborTarget(server, "content")
    server.stop()


# The Python clients' tests (harborapi, the generated client): a module defines
# OPERATIONS, the fixture ``outcomes`` ({operation: (ok, detail)}) and imports
# the two tests below; each operation is one test.
Outcome = tuple[bool, str]


def check(condition: bool, what: object) -> None:
    """A step's check: a failure shows ``what`` in that operation's test."""
    if not condition:
        raise AssertionError(what)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``op`` is each of the module's OPERATIONS (where a test does not
    parametrize it itself)."""
    if "op" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("parametrize"):
        metafunc.parametrize("op", metafunc.module.OPERATIONS)


def test_every_operation_reported(
    outcomes: dict[str, Outcome], request: pytest.FixtureRequest
) -> None:
    assert list(outcomes) == request.module.OPERATIONS


def test_operation(outcomes: dict[str, Outcome], op: str) -> None:
    ok, detail = outcomes[op]
    assert ok, detail
