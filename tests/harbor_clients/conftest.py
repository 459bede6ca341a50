from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import BerthServer
from tests.registry.helpers import Remote

# What every client does with the pushed artifact, in this order.
ARTIFACT_OPERATIONS = [
    "artifact.list",
    "artifact.get",
    "tag.create",
    "tag.list",
    "tag.delete",
    "artifact.copy",
]


@dataclass(frozen=True)
class HarborTarget:
    """A live Berth for one client's run: ``content`` holds ``app:v1``."""

    server: BerthServer
    content: str


@pytest.fixture(scope="module")
def harbor_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarborTarget]:
    """A Berth of the module's own: the clients change system settings."""
    server = BerthServer(tmp_path_factory.mktemp("harbor-client") / "data").start()
    server.create_projects(["content"])
    Remote(server.url).push_image("content/app", "v1")
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
