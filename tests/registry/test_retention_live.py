"""Tag retention end to end on a live Berth with its worker: images pushed by
crane, a policy and a run through Harbor's API, the run carried out by the
Celery worker through the broker, and crane seeing what is left."""

from __future__ import annotations

import os

import pytest
import requests

from tests.conftest import ADMIN, BerthServer
from tests.crane import crane_for, one_file_layer
from tests.support import wait_until

pytestmark = pytest.mark.live


def test_a_run_started_through_the_api_is_carried_out_by_the_worker(tmp_path):
    server = BerthServer(tmp_path / "data", role="all").start()
    try:
        http = requests.Session()
        http.auth = ADMIN
        r = http.post(f"{server.url}/api/v2.0/projects", json={"project_name": "keep"})
        assert r.status_code == 201, r.text
        pid = int(r.headers["Location"].rsplit("/", 1)[1])
        crane = crane_for(server.addr, ADMIN, tmp_path)
        for n in range(3):
            layer = one_file_layer(tmp_path / f"l{n}.tar", "f", os.urandom(2048))
            crane("append", "-f", str(layer), "-t", f"{server.addr}/keep/app:v{n}")
            if n == 0:
                # Before the others: a tag pushed onto an artifact is a push of it.
                crane("tag", f"{server.addr}/keep/app:v0", "release-1")
        policy = {
            "algorithm": "or",
            "rules": [
                {
                    "action": "retain",
                    "template": "latestPushedK",
                    "params": {"latestPushedK": 1},
                    "tag_selectors": [
                        {"kind": "regex", "decoration": "matches", "pattern": "^v\\d+$"}
                    ],
                    "scope_selectors": {"repository": [{"kind": "doublestar", "pattern": "**"}]},
                },
                {
                    "action": "retain",
                    "template": "always",
                    "params": {},
                    "tag_selectors": [{"kind": "doublestar", "pattern": "release-*"}],
                },
            ],
            "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
            "scope": {"level": "project", "ref": pid},
        }
        r = http.post(f"{server.url}/api/v2.0/retentions", json=policy)
        assert r.status_code == 201, r.text
        base = server.url + r.headers["Location"]
        run = http.post(f"{base}/executions", json={"dry_run": False})
        assert run.status_code == 201, run.text
        execution = server.url + run.headers["Location"]

        def finished() -> dict | None:
            [latest] = http.get(f"{base}/executions").json()
            return latest if latest["status"] not in ("Pending", "Running") else None

        done = wait_until(finished, what=lambda: server.log_path.read_text()[-3000:])
        assert done["status"] == "Success" and done["trigger"] == "MANUAL"
        assert execution.endswith(f"/executions/{done['id']}")
        # v2 is the latest push of the v<n> tags; v0 carries release-1, kept always.
        tags = sorted(crane("ls", f"{server.addr}/keep/app").decode().split())
        assert tags == ["release-1", "v0", "v2"]
        [task] = http.get(f"{base}/executions/{done['id']}/tasks").json()
        assert (task["repository"], task["total"], task["retained"]) == ("keep/app", 3, 2)
        log = http.get(f"{base}/executions/{done['id']}/tasks/{task['id']}").text
        assert log.count("DELETED") == 1
        check = server.manage("registry_check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        server.stop()
