"""Principals and tokens against a live Berth, pushed to with crane (issue 13,
items 3 and 10; security cases B17, C24)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import BerthServer
from tests.crane import crane_for, one_file_layer
from tests.support import wait_until

pytestmark = pytest.mark.clients


@pytest.fixture
def berth(tmp_path) -> BerthServer:
    server = BerthServer(tmp_path / "data", env={"BERTH_PRINCIPAL_RECHECK_SECONDS": "1"}).start()
    server.create_projects(["team"])
    yield server
    server.stop()


def robot(server: BerthServer, name: str, *access: tuple[str, str]) -> dict:
    r = server.http.post(
        f"{server.url}/api/v2.0/robots",
        json={
            "name": name,
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "team",
                    "access": [{"resource": res, "action": act} for res, act in access],
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def layer(tmp_path: Path) -> str:
    return str(one_file_layer(tmp_path / "layer.tar", "hello.txt", b"hello\n"))


def test_a_weak_robot_cannot_take_over_a_pushing_one(berth, tmp_path):
    pusher = robot(berth, "pusher", ("repository", "pull"), ("repository", "push"))
    weak = robot(berth, "weak", ("project", "read"), ("robot", "update"))
    r = berth.http.patch(
        f"{berth.url}/api/v2.0/robots/{pusher['id']}",
        json={"secret": "Chosen-secret-1"},
        auth=(weak["name"], weak["secret"]),
    )
    assert r.status_code == 403, r.text
    (tmp_path / "thief").mkdir()
    thief = crane_for(berth.addr, (pusher["name"], "Chosen-secret-1"), tmp_path / "thief")
    thief("append", "-f", layer(tmp_path), "-t", f"{berth.addr}/team/app:stolen", ok=False)
    (tmp_path / "owner").mkdir()
    owner = crane_for(berth.addr, (pusher["name"], pusher["secret"]), tmp_path / "owner")
    owner("append", "-f", layer(tmp_path), "-t", f"{berth.addr}/team/app:v1")


def test_a_disabled_robots_token_stops_pushing_within_the_recheck_interval(berth, tmp_path):
    pusher = robot(berth, "pusher", ("repository", "pull"), ("repository", "push"))
    r = berth.http.get(
        f"{berth.url}/service/token",
        params={"service": "harbor-registry", "scope": "repository:team/app:pull,push"},
        auth=(pusher["name"], pusher["secret"]),
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    crane = crane_for(berth.addr, token, tmp_path)  # the token itself, never the secret
    crane("append", "-f", layer(tmp_path), "-t", f"{berth.addr}/team/app:v1")

    r = berth.http.put(f"{berth.url}/api/v2.0/robots/{pusher['id']}", json={"disable": True})
    assert r.status_code == 200, r.text

    # Every web process notices within BERTH_PRINCIPAL_RECHECK_SECONDS (1 s here),
    # long before the token expires (BERTH_TOKEN_TTL, 30 min).
    start = f"{berth.url}/v2/team/app/blobs/uploads/"
    wait_until(
        lambda: (
            requests.post(start, headers={"Authorization": f"Bearer {token}"}).status_code == 401
        ),
        what="the disabled robot's token refused",
    )
    crane("append", "-f", layer(tmp_path), "-t", f"{berth.addr}/team/app:v2", ok=False)
