"""A scaled-out Berth on loopback: N replicas on one PostgreSQL, one S3 server
(MinIO) and one Redis, behind haproxy balancing every request round robin.

A replica is anything with the small ``Replica`` interface (start, kill, stop,
``manage``, ``logs``, a name and a URL): ``ProcessReplica`` runs ``manage.py
serve --role all`` as a process group, ``ContainerReplica`` runs Berth's image
(``--network host``) in the tests' private dockerd.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import requests

from tests.conftest import (
    ADMIN_PASSWORD,
    REPO_ROOT,
    BerthServer,
    live_database_url,
)
from tests.s3 import MinioServer, new_bucket_name, shared_minio
from tests.servers import RedisServer
from tests.support import free_port

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")
# haproxy adds it to every answer: which replica served the request.
REPLICA_HEADER = "X-Berth-Replica"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-3000:]}")


def postgres_base_url() -> str:
    """The tests' PostgreSQL server: DATABASE_URL when the suite runs on it, else
    the private one of scripts/postgres.sh (started if needed; never stopped here,
    the Makefile owns it)."""
    url = os.environ.get("DATABASE_URL", "")
    if url.partition(":")[0] in POSTGRES_SCHEMES:
        return url
    result = subprocess.run(
        ["bash", "scripts/postgres.sh", "start"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


class Replica(Protocol):
    """What the cluster needs of one Berth replica, however it runs."""

    name: str
    url: str

    def start(self) -> None: ...
    def kill(self) -> None: ...
    def stop(self) -> None: ...
    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...
    def logs(self) -> str: ...


class ProcessReplica:
    """``manage.py serve --role all`` (web, worker, scheduler) as a process group on
    loopback, with a data directory of its own and the shared backends."""

    def __init__(self, name: str, data_dir: Path, env: Mapping[str, str], database_url: str):
        self.name = name
        self.server = BerthServer(data_dir, role="all", env=dict(env), database_url=database_url)
        self.addr = self.server.addr
        self.url = self.server.url

    def start(self) -> None:
        self.server.start(timeout=120)

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup runs anywhere."""
        self.server.kill()

    def stop(self) -> None:
        self.server.stop()

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.server.manage(*args, check=check)

    def logs(self) -> str:
        path = self.server.log_path
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _port_closed(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"something still listens on port {port}")


class ContainerReplica:
    """Berth's image (tests/deploy.py, ``berth_image``) as a container on the
    host's network: ``serve --role all``, its data directory a host volume."""

    def __init__(
        self,
        docker: Any,
        image: str,
        name: str,
        data_dir: Path,
        env: Mapping[str, str],
        database_url: str,
    ) -> None:
        from tests.deploy import BerthContainer

        self.name = name
        self.container = BerthContainer(
            docker,
            image,
            data_dir,
            role="all",
            env={**env, "DATABASE_URL": database_url, "BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
        self.addr = self.container.addr
        self.url = self.container.url
        self.created = False

    def start(self) -> None:
        if not self.created:
            self.container.start(timeout=180)
            self.created = True
            return
        self.container.docker.run("start", self.container.name)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not come back:\n{self.container.logs()}")

    def kill(self) -> None:
        """SIGKILL the container's first process: the whole container dies."""
        self.container.docker.run("kill", "--signal", "KILL", self.container.name)
        _port_closed(self.container.port)

    def stop(self) -> None:
        if self.created:
            self.container.remove()

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.container.exec("python3", "manage.py", *args, check=check)

    def logs(self) -> str:
        return self.container.logs()[-4000:]


class Haproxy:
    """haproxy (Debian's) in front of the replicas: per-request round robin,
    health checks, a response header naming the replica, a stats page."""

    def __init__(self, work: Path, replicas: list[Replica]) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.addr}"
        self.work = work
        self.replicas = replicas
        self.config_path = work / "haproxy.cfg"
        self.log_path = work / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """deploy/haproxy/haproxy.cfg, the documented sample, with this cluster's
        listen addresses and servers in place of the sample's."""
        sample = (REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
        lines: list[str] = []
        for line in sample.splitlines():
            stripped = line.strip()
            if stripped.startswith("server "):
                continue
            if stripped == "bind :5000":
                line = f"    bind {self.addr}"
            elif stripped == "bind 127.0.0.1:8404":
                line = f"    bind 127.0.0.1:{self.stats_port}"
            lines.append(line)
            if stripped.startswith("default-server "):
                lines.extend(
                    f"    server {r.name} {urllib.parse.urlsplit(r.url).netloc} check"
                    for r in self.replicas
                )
        config = "\n".join(lines) + "\n"
        assert config.count(" check\n") == len(self.replicas), config
        return config

    def start(self) -> Haproxy:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        assert os.path.isfile(binary), "haproxy missing: apt-get install haproxy"
        self.work.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        check = subprocess.run(
            [binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        _wait_for("haproxy", lambda: self._stats_ready(), self.proc, self.log_path)
        return self

    def _stats_ready(self) -> bool:
        try:
            self.server_status()
            return True
        except (requests.RequestException, KeyError):
            return False

    def stats(self) -> list[dict[str, str]]:
        """haproxy's statistics, one dict per proxy and server."""
        r = requests.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        r.raise_for_status()
        lines = r.text.lstrip("# ").splitlines()
        header = lines[0].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]

    def server_status(self) -> dict[str, str]:
        """Replica name → "UP", "DOWN"… as haproxy's health checks see it; a
        server counts as UP only once a check passed (haproxy assumes UP at start)."""
        status = {}
        for row in self.stats():
            if row["pxname"] != "berth" or row["svname"] in ("FRONTEND", "BACKEND"):
                continue
            up_unchecked = row["status"] == "UP" and row["check_status"] != "L7OK"
            status[row["svname"]] = "UP unchecked" if up_unchecked else row["status"]
        return status

    def requests_per_replica(self) -> dict[str, int]:
        """Replica name → requests haproxy sent it so far."""
        return {
            row["svname"]: int(row["req_tot"] or 0)
            for row in self.stats()
            if row["pxname"] == "berth" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_status(self, name: str, status: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server_status().get(name) == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"haproxy: {name} not {status}: {self.server_status()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Cluster:
    """Three (or ``size``) replicas, their shared backends and the balancer."""

    def __init__(self, work: Path, size: int = 3) -> None:
        self.work = work
        self.minio: MinioServer = shared_minio()
        self.bucket = new_bucket_name()
        self.redis = RedisServer(work / "redis")
        self.database_url = live_database_url(free_port(), base=postgres_base_url())
        assert self.database_url
        self.storage_url = (
            f"s3://{self.bucket}/berth?endpoint={self.minio.endpoint}"
            f"&region={self.minio.region}&path_style=true"
            # A lease left by a killed writer is taken over after this many seconds.
            "&lock_ttl=5"
        )
        self.size = size
        self.replicas: list[Replica] = []
        self.balancer: Haproxy | None = None

    def env(self) -> dict[str, str]:
        """What every replica gets: the same backends, the same secret key."""
        return {
            "BERTH_STORAGE_URL": self.storage_url,
            **self.minio.credentials_env,
            "BERTH_CACHE_URL": self.redis.url(1),
            "CELERY_BROKER_URL": self.redis.url(0),
            "BERTH_SECRET_KEY": self.secret_key,
        }

    def start(self, launcher: Callable[..., Replica] = ProcessReplica) -> Cluster:
        self.secret_key = secrets.token_urlsafe(50)
        self.redis.start()
        self.replicas = [
            launcher(f"r{i + 1}", self.work / f"r{i + 1}" / "data", self.env(), self.database_url)
            for i in range(self.size)
        ]
        # Together, as a deployment starts them: they take turns migrating.
        errors: list[BaseException] = []

        def start(replica: Replica) -> None:
            try:
                replica.start()
            except BaseException as exc:  # reported below
                errors.append(exc)

        import threading

        threads = [threading.Thread(target=start, args=(r,)) for r in self.replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        self.balancer = Haproxy(self.work / "haproxy", self.replicas).start()
        for replica in self.replicas:
            self.balancer.wait_status(replica.name, "UP")
        return self

    @property
    def url(self) -> str:
        assert self.balancer
        return self.balancer.url

    @property
    def addr(self) -> str:
        assert self.balancer
        return self.balancer.addr

    def sql(self, query: str, *params: object) -> list[tuple]:
        """Rows of a query on the replicas' database."""
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def stop(self) -> None:
        if self.balancer:
            self.balancer.stop()
        for replica in self.replicas:
            replica.stop()
        self.redis.stop()

    def logs(self) -> str:
        """The tail of every log, for a failing assertion."""
        return "\n".join(f"== {replica.name}\n{replica.logs()}" for replica in self.replicas)


def temp_work() -> Path:
    return Path(tempfile.mkdtemp(prefix="berth-scale-"))
