"""The container image users deploy: built by scripts/build-image.sh, run embedded
(SQLite and blobs in its data volume), used by docker, stopped by docker."""

from __future__ import annotations

import pytest
import requests

from tests.clients import build_scratch_image
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.deploy import BERTH_UID, IMAGE_BUILD_TIMEOUT, BerthContainer

pytestmark = [pytest.mark.clients, pytest.mark.timeout(IMAGE_BUILD_TIMEOUT + 600)]


def test_image_runs_berth_embedded_push_pull_and_stops_cleanly(
    deploy_docker, berth_image, tmp_path
):
    berth = BerthContainer(
        deploy_docker,
        berth_image,
        tmp_path / "data",
        env={"BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start()
    try:
        r = requests.get(f"{berth.url}/v2/", timeout=10)
        assert r.status_code == 401
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer realm=")
        assert 'service="' in challenge

        # Not root inside, and the embedded state lands in the data volume.
        assert berth.exec("id", "-u").stdout.strip() == str(BERTH_UID)
        database = tmp_path / "data" / "berth.sqlite3"
        assert database.is_file()
        assert database.stat().st_uid == BERTH_UID

        ref = f"{berth.addr}/library/from-image:v1"
        deploy_docker.login(berth.addr, *ADMIN)
        image_id = build_scratch_image(deploy_docker, ref, tmp_path / "build", layers=2)
        digest = deploy_docker.push(ref)
        deploy_docker.rmi(ref, force=True)
        assert deploy_docker.pull(ref) == image_id
        manifest = requests.get(
            f"{berth.url}/v2/library/from-image/manifests/v1",
            auth=ADMIN,
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        assert manifest.status_code == 200
        assert manifest.headers["Docker-Content-Digest"] == digest
        # Database and blob store agree, checked by the image's own command.
        check = berth.exec("python3", "manage.py", "registry_check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr

        code, seconds = berth.stop(timeout=30)
        assert code == 0, berth.logs()
        assert seconds < 25, f"docker stop took {seconds:.1f}s (SIGKILL at 30s)"
    finally:
        berth.remove()
