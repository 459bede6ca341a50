"""Topologies with real Berth instances (``manage.py serve``, web, worker and
scheduler each), configured through Harbor's API, fed by crane: master →
slaves event-driven, master ↔ master without ping-pong, a three-tier chain,
the destination down mid-run, the source's worker SIGKILLed mid-copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ADMIN, BerthServer
from tests.crane import crane_for, one_file_layer
from tests.registry.helpers import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, sha256
from tests.replication.conftest import push_big_blob
from tests.support import wait_until

pytestmark = [pytest.mark.live, pytest.mark.dbindependent]

ENV = {
    "BERTH_EVENT_SWEEP_SECONDS": "1",
    "BERTH_REPLICATION_TICK_SECONDS": "2",
    "BERTH_REPLICATION_LEASE_SECONDS": "6",
    "BERTH_REPLICATION_RETRIES": "3",
    "BERTH_REPLICATION_BACKOFF_SECONDS": "0.2",
}


@pytest.fixture
def berths(tmp_path: Path) -> Iterator[Callable[[str], BerthServer]]:
    started: list[BerthServer] = []

    def start(name: str) -> BerthServer:
        server = BerthServer(tmp_path / name / "data", role="all", env=ENV).start(timeout=90)
        server.create_projects(["app"])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def api(server: BerthServer, method: str, path: str, body: Any = None) -> requests.Response:
    return server.http.request(method, f"{server.url}/api/v2.0{path}", json=body, timeout=60)


def endpoint(on: BerthServer, to: BerthServer) -> int:
    r = api(
        on,
        "POST",
        "/registries",
        {
            "name": f"berth-{to.port}",
            "type": "berth",
            "url": to.url,
            "credential": {"type": "basic", "access_key": ADMIN[0], "access_secret": ADMIN[1]},
        },
    )
    assert r.status_code == 201, r.text
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    r = api(on, "POST", "/registries/ping", {"id": rid})
    assert r.status_code == 200, r.text
    return rid


def push_policy(on: BerthServer, to: BerthServer, **extra: Any) -> int:
    body = {
        "name": f"to-{to.port}",
        "dest_registry": {"id": endpoint(on, to)},
        "trigger": {"type": "event_based"},
        "replicate_deletion": True,
        "enabled": True,
        **extra,
    }
    r = api(on, "POST", "/replication/policies", body)
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


def digest_on(server: BerthServer, repo: str, tag: str) -> str | None:
    r = requests.head(
        f"{server.url}/v2/{repo}/manifests/{tag}",
        auth=ADMIN,
        headers={"Accept": OCI_MANIFEST + ", application/vnd.docker.distribution.manifest.v2+json"},
        timeout=30,
    )
    return r.headers["Docker-Content-Digest"] if r.status_code == 200 else None


def executions(server: BerthServer) -> list[dict[str, Any]]:
    r = api(server, "GET", "/replication/executions?page_size=100")
    assert r.status_code == 200, r.text
    return list(reversed(r.json()))


def settled(server: BerthServer, count: int) -> list[dict[str, Any]] | None:
    found = executions(server)
    done = len(found) == count and all(e["status"] != "InProgress" for e in found)
    return found if done else None


def task_logs(server: BerthServer, execution_id: int) -> str:
    tasks = api(server, "GET", f"/replication/executions/{execution_id}/tasks").json()
    return "".join(
        api(server, "GET", f"/replication/executions/{execution_id}/tasks/{t['id']}/log").text
        for t in tasks
    )


def crane_push(server: BerthServer, ref: str, tmp_path: Path) -> str:
    work = tmp_path / f"crane-{os.urandom(4).hex()}"
    work.mkdir()
    crane = crane_for(server.addr, ADMIN, work)
    layer = one_file_layer(work / "layer.tar", "hello.txt", os.urandom(4096))
    crane("append", "-f", str(layer), "-t", f"{server.addr}/{ref}")
    return crane("digest", f"{server.addr}/{ref}").decode().strip()


def test_master_to_slaves_event_based_follows_pushes_and_deletes(
    berths: Callable[[str], BerthServer], tmp_path: Path
) -> None:
    master, slave1, slave2 = berths("master"), berths("slave1"), berths("slave2")
    push_policy(master, slave1)
    push_policy(master, slave2)

    digest = crane_push(master, "app/web:v1", tmp_path)
    for slave in (slave1, slave2):
        wait_until(lambda s=slave: digest_on(s, "app/web", "v1") == digest, what="replicated")

    r = requests.delete(f"{master.url}/v2/app/web/manifests/{digest}", auth=ADMIN, timeout=30)
    assert r.status_code == 202
    for slave in (slave1, slave2):
        wait_until(lambda s=slave: digest_on(s, "app/web", "v1") is None, what="deleted")


def test_master_master_does_not_ping_pong(
    berths: Callable[[str], BerthServer], tmp_path: Path
) -> None:
    east, west = berths("east"), berths("west")
    push_policy(east, west)
    push_policy(west, east)

    digest = crane_push(east, "app/shared:v1", tmp_path)
    wait_until(lambda: digest_on(west, "app/shared", "v1") == digest, what="east → west")
    # The copy arriving on west is an event there: west's policy looks, finds
    # east has it, and copies nothing; nothing more follows on east.
    west_runs = wait_until(lambda: settled(west, 1), what="west's run")
    assert "nothing new" in task_logs(west, west_runs[0]["id"])

    # A marker pushed to west after that crosses to east: events are handled
    # in order, so by then east has seen whatever it would have seen.
    marker = crane_push(west, "app/marker:v1", tmp_path)
    wait_until(lambda: digest_on(east, "app/marker", "v1") == marker, what="west → east")
    east_runs = wait_until(lambda: settled(east, 2), what="east's runs")
    west_runs = wait_until(lambda: settled(west, 2), what="west's runs")
    assert [e["status"] for e in east_runs + west_runs] == ["Succeed"] * 4
    assert "nothing new" not in task_logs(east, east_runs[0]["id"])  # the real copy
    assert "nothing new" in task_logs(east, east_runs[1]["id"])  # the marker, sent back
    assert digest_on(east, "app/shared", "v1") == digest

    # A delete crosses once and stops: the other side has nothing left to delete.
    r = requests.delete(f"{east.url}/v2/app/shared/manifests/{digest}", auth=ADMIN, timeout=30)
    assert r.status_code == 202
    wait_until(lambda: digest_on(west, "app/shared", "v1") is None, what="deleted on west")
    wait_until(lambda: settled(west, 3), what="west's delete run")
    wait_until(lambda: settled(east, 3), what="east's delete run")
    assert digest_on(east, "app/shared", "v1") is None


def test_three_tiers_headquarters_province_city(
    berths: Callable[[str], BerthServer], tmp_path: Path
) -> None:
    hq, province, city = berths("hq"), berths("province"), berths("city")
    push_policy(hq, province)
    push_policy(province, city)
    digest = crane_push(hq, "app/edict:v1", tmp_path)
    wait_until(lambda: digest_on(city, "app/edict", "v1") == digest, what="hq → province → city")
    assert digest_on(province, "app/edict", "v1") == digest

    # Back up: headquarters pulls one repository of the city on a schedule
    # (every 5 s here), into a namespace of its own.
    r = api(hq, "POST", "/projects", {"project_name": "from-city"})
    assert r.status_code == 201, r.text
    r = api(
        hq,
        "POST",
        "/replication/policies",
        {
            "name": "report-up",
            "src_registry": {"id": endpoint(hq, city)},
            "dest_namespace": "from-city",
            "filters": [{"type": "name", "value": "app/report"}],
            "trigger": {"type": "scheduled", "trigger_settings": {"cron": "*/5 * * * * *"}},
            "enabled": True,
        },
    )
    assert r.status_code == 201, r.text
    report = crane_push(city, "app/report:v1", tmp_path)
    crane_push(city, "app/other:v1", tmp_path)
    wait_until(
        lambda: digest_on(hq, "from-city/report", "v1") == report,
        timeout=120,
        what="the scheduled pull",
    )
    pulls = [e for e in executions(hq) if e["trigger"] == "scheduled"]
    assert pulls and all(e["status"] in ("Succeed", "InProgress") for e in pulls)
    assert digest_on(hq, "from-city/other", "v1") is None


def _big_image(server: BerthServer, repo: str, size: int) -> str:
    layer = push_big_blob(server.url, ADMIN, repo, size)
    config = b'{"architecture":"amd64","os":"linux"}'
    r = requests.post(
        f"{server.url}/v2/{repo}/blobs/uploads/?digest={sha256(config)}",
        data=config,
        auth=ADMIN,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": size}],
    }
    import json

    body = json.dumps(manifest).encode()
    r = requests.put(
        f"{server.url}/v2/{repo}/manifests/v1",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
        auth=ADMIN,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return sha256(body)


def _start(server: BerthServer, policy_id: int) -> int:
    r = api(server, "POST", "/replication/executions", {"policy_id": policy_id})
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


def _execution(server: BerthServer, eid: int) -> dict[str, Any]:
    return dict(api(server, "GET", f"/replication/executions/{eid}").json())


def test_the_source_killed_mid_copy_finishes_after_restart(
    berths: Callable[[str], BerthServer], tmp_path: Path
) -> None:
    source, target = berths("source"), berths("target")
    digest = _big_image(source, "app/big", 48 << 20)
    # 4 MB/s: about 12 s of copying, in 8 MiB chunks.
    policy = push_policy(source, target, trigger={"type": "manual"}, speed=4096)
    eid = _start(source, policy)
    wait_until(lambda: "copy app/big" in task_logs(source, eid), timeout=120, what="copying")
    source.kill()
    source.start(timeout=90)
    done = wait_until(
        lambda: (e := _execution(source, eid))["status"] != "InProgress" and e,
        timeout=300,
        what="the execution taken over and finished",
    )
    assert done["status"] == "Succeed", task_logs(source, eid)
    assert "taken over by" in task_logs(source, eid)
    assert digest_on(target, "app/big", "v1") == digest


def test_the_destination_down_mid_run_fails_clearly_and_a_retry_succeeds(
    berths: Callable[[str], BerthServer], tmp_path: Path
) -> None:
    source, target = berths("src"), berths("dst")
    digest = _big_image(source, "app/big", 32 << 20)
    policy = push_policy(source, target, trigger={"type": "manual"}, speed=4096)
    eid = _start(source, policy)
    wait_until(lambda: "copy app/big" in task_logs(source, eid), timeout=120, what="copying")
    target.stop()
    failed = wait_until(
        lambda: (e := _execution(source, eid))["status"] != "InProgress" and e,
        timeout=300,
        what="the execution failed",
    )
    assert failed["status"] == "Failed"
    assert failed["status_text"] == "1 of 1 tasks failed"
    assert "failed: Unreachable" in task_logs(source, eid)

    target.start(timeout=90)
    again = _start(source, policy)
    done = wait_until(
        lambda: (e := _execution(source, again))["status"] != "InProgress" and e,
        timeout=300,
        what="the retry",
    )
    assert done["status"] == "Succeed", task_logs(source, again)
    assert digest_on(target, "app/big", "v1") == digest
