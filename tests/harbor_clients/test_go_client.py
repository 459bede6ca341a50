"""Harbor's Go client (github.com/goharbor/go-client v0.213.1, the library of
harbor-cli and Harbor's Terraform provider) against a live Berth.

The program in tests/harbor_clients/goclient (built by
tests/peers/build-go-peers.sh into .peers/bin/harbor-go-client) runs every
operation Berth serves and prints one JSON line per operation; each is a test.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADMIN, REPO_ROOT
from tests.harbor_clients.conftest import (
    ARTIFACT_OPERATIONS,
    LABEL_OPERATIONS,
    VALUES,
    HarborTarget,
)

pytestmark = [pytest.mark.live, pytest.mark.clients]

PEERS = Path(os.environ.get("BERTH_PEERS_BIN", REPO_ROOT / ".peers" / "bin"))

OPERATIONS = [
    "ping",
    "systeminfo.get",
    "systeminfo.volumes",
    "systeminfo.getcert",
    "health.get",
    "configurations.get",
    "configurations.update",
    "permissions.get",
    "project.create",
    "project.head",
    "project.get_by_id",
    "project.get_by_name",
    "project.list",
    "project.update",
    "project.summary",
    "project.deletable",
    "metadata.add",
    "metadata.list",
    "metadata.get",
    "metadata.update",
    "metadata.delete",
    "user.create",
    "user.get",
    "user.get_missing",
    "user.list",
    "user.search",
    "user.current",
    "user.current_permissions",
    "user.password",
    "user.cli_secret",
    "member.create",
    "member.list",
    "member.get",
    "member.update",
    "project.create_adminonly",
    "member.delete",
    "user.sysadmin",
    "robot.create",
    "robot.list_q",
    "robot.get",
    "robot.update",
    "robot.refresh_secret",
    "robot.delete",
    "immutable.create",
    "immutable.list",
    "immutable.list_by_name",
    "immutable.update",
    "immutable.delete",
    "repository.list",
    "repository.list_all",
    "repository.update",
    "repository.get",
    *ARTIFACT_OPERATIONS,
    *LABEL_OPERATIONS,
    "artifact.add_label_foreign",
    "artifact.list_by_label",
    "artifact.remove_label",
    "label.delete",
    "artifact.delete",
    "repository.delete",
    "project.artifacts",
    "artifact.accessories",
    "artifact.addition",
    "statistics.get",
    "search",
    "quota.list",
    "quota.get",
    "quota.update",
    "quota.get_hard",
    "retention.metadata",
    "retention.create",
    "retention.get",
    "retention.update",
    "retention.trigger",
    "retention.executions",
    "retention.stop",
    "retention.tasks",
    "retention.delete",
    "auditlog.list",
    "auditlog.list_exts",
    "auditlog.event_types",
    "project.logs",
    "gc.schedule_update",
    "gc.schedule_get",
    "gc.schedule_bad_cron",
    "gc.run",
    "gc.get",
    "gc.stop",
    "gc.history",
    "gc.log",
    "user.delete",
    "project.delete",
]


@pytest.fixture(scope="module")
def outcomes(harbor_target: HarborTarget) -> dict[str, dict[str, object]]:
    program = PEERS / "harbor-go-client"
    assert program.is_file(), f"{program} missing: run tests/peers/build-go-peers.sh"
    env = {
        **os.environ,
        "HARBOR_URL": harbor_target.server.url,
        "HARBOR_USERNAME": ADMIN[0],
        "HARBOR_PASSWORD": ADMIN[1],
        "HARBOR_CONTENT_PROJECT": harbor_target.content,
        "HARBOR_ATTACHED_PROJECT": harbor_target.attached,
        "HARBOR_CHART_VALUES": VALUES.decode(),
        "HARBOR_SUFFIX": "go",
    }
    run = subprocess.run(
        [str(program)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return {line["op"]: line for line in lines}


def test_every_operation_reported(outcomes: dict[str, dict[str, object]]) -> None:
    assert list(outcomes) == OPERATIONS


@pytest.mark.parametrize("op", OPERATIONS)
def test_operation(outcomes: dict[str, dict[str, object]], op: str) -> None:
    outcome = outcomes.get(op)
    assert outcome is not None, f"{op} was not run"
    assert outcome["ok"], outcome.get("detail")
