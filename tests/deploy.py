"""Berth's container image for the tests: built once per session by the same
scripts users run (scripts/build-image.sh on a debootstrap base), in a private
dockerd, and run as containers on the host's network.

Fixtures (registered in tests/conftest.py):

* ``deploy_docker`` — the session's private :class:`DockerDaemon` that holds the
  image and runs the containers (its own data root and socket).
* ``berth_image`` — the image's tag (``berth:test``) in ``deploy_docker``.

:class:`BerthContainer` runs one Berth from the image (``--network host``, a
free port, a data directory on the host) and stops it the way Docker does.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import requests

from tests.clients import DockerDaemon
from tests.conftest import live_database_url
from tests.support import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_TAG = "berth:test"
# The image's user (Dockerfile): a data directory on the host must be theirs.
BERTH_UID = 10001
# Cold: debootstrap (about 75 s) plus pip installing the dependencies (3-8 min on
# a loaded 2-core machine). Warm (the base and the layer cache in ~/.cache/berth):
# a minute or two. A test using berth_image needs a timeout that covers a cold build.
IMAGE_BUILD_TIMEOUT = 1800


@pytest.fixture(scope="session")
def deploy_docker(tmp_path_factory) -> Iterator[DockerDaemon]:
    daemon = DockerDaemon(cmd_timeout=IMAGE_BUILD_TIMEOUT).start(
        tmp_path_factory.mktemp("deploy-docker")
    )
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def berth_image(deploy_docker: DockerDaemon) -> str:
    """Berth's image, built by scripts/build-image.sh (which prints the tag)."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "scripts/build-image.sh", IMAGE_TAG],
        cwd=REPO_ROOT,
        env=deploy_docker.env(),
        capture_output=True,
        text=True,
        timeout=IMAGE_BUILD_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert result.stdout.strip().splitlines()[-1] == IMAGE_TAG
    print(f"berth_image: {IMAGE_TAG} in {time.monotonic() - started:.0f}s")
    return IMAGE_TAG


class BerthContainer:
    """``docker run --network host IMAGE serve …`` with its data directory on the
    host (owned by the image's user), listening on 127.0.0.1:<free port>. When
    the suite runs on PostgreSQL, the container gets a fresh database of its own
    there, as BerthServer does (``DATABASE_URL`` in ``env`` overrides it)."""

    def __init__(
        self,
        docker: DockerDaemon,
        image: str,
        data_dir: Path,
        *,
        role: str = "all",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.docker = docker
        self.image = image
        self.data_dir = data_dir
        self.role = role
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.addr}"
        self.name = f"berth-{uuid.uuid4().hex[:10]}"
        self.database_url = live_database_url(self.port)

    def start(self, timeout: float = 120) -> BerthContainer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.data_dir, BERTH_UID, BERTH_UID)
        env = {"BERTH_ADDR": self.addr, "BERTH_LOG_LEVEL": "WARNING"}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        self.docker.run(
            "run", "--detach", "--name", self.name, "--network", "host",
            "--volume", f"{self.data_dir}:/var/lib/berth",
            *(f"--env={key}={value}" for key, value in env.items()),
            self.image, "serve", "--role", self.role, *self.args,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited early:\n{self.logs()}")
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer in {timeout:.0f}s:\n{self.logs()}")

    def state(self, field: str) -> str:
        return str(
            self.docker.run("inspect", "--format", f"{{{{.State.{field}}}}}", self.name).stdout
        ).strip()

    def running(self) -> bool:
        return self.state("Running") == "true"

    def logs(self) -> str:
        r = self.docker.run("logs", "--tail", "200", self.name, check=False)
        return f"{r.stdout}{r.stderr}"

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.docker.run("exec", self.name, *argv, check=check)

    def stop(self, timeout: int = 30) -> tuple[int, float]:
        """``docker stop`` (SIGTERM, SIGKILL after ``timeout``): the exit code and
        the seconds it took."""
        started = time.monotonic()
        self.docker.run("stop", "--time", str(timeout), self.name)
        return int(self.state("ExitCode")), time.monotonic() - started

    def remove(self) -> None:
        self.docker.run("rm", "--force", "--volumes", self.name, check=False)
