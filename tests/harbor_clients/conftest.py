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
# Then labels: made, read, changed and attached to the copy (each client goes on
# with checks of its own).
LABEL_OPERATIONS = [
    "label.create",
    "label.create_project",
    "label.list",
    "label.list_project",
    "label.get",
    "label.update",
    "artifact.add_label",
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
