"""Private Redis and RabbitMQ servers for tests (Debian's redis-server and
rabbitmq-server, installed by scripts/test-deps.sh).

Each runs on free loopback ports with its own data directory, and is stopped
when its context (or session fixture) ends:

    with redis_server(tmp_path) as redis:        # redis.url == "redis://127.0.0.1:…/0"
        redis.stop(); redis.start()              # a restart, same port, empty
    with rabbitmq_server(tmp_path) as rabbit:    # rabbit.url == "amqp://guest:guest@…//"

Session fixtures ``redis_url`` and ``rabbitmq_url`` share one server each among
the tests of a run (use a key prefix or a fresh Redis database per test).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import free_port, starting_a_server


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text()[-3000:]}")


def _stop_group(proc: subprocess.Popen[bytes] | None, grace: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class RedisServer:
    """``redis-server`` on 127.0.0.1, no persistence (as Berth's cache wants it)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        starting_a_server("Redis")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = self.dir / "redis.log"
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--databases", "64",
            "--logfile", str(log),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.touch()
        _wait_port(self.port, self.proc, log, 20)
        return self

    def stop(self) -> None:
        _stop_group(self.proc)


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()


class RabbitMQServer:
    """A RabbitMQ node of its own: node name, ports (AMQP, Erlang distribution,
    a private epmd), Mnesia and log directories, no plugins, no system config."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"berthtest{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        (self.dir / "rabbitmq-env.conf").touch()
        (self.dir / "enabled_plugins").write_text("[].\n")
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(self.dir),  # its own .erlang.cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
        }

    def start(self, timeout: float = 90) -> RabbitMQServer:
        starting_a_server("RabbitMQ")
        import kombu

        log = self.dir / "rabbitmq.log"
        self.proc = subprocess.Popen(
            ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
            env=self.env,
            cwd=self.dir,
            stdout=open(log, "ab"),  # noqa: SIM115 - lives as long as the server
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.port, self.proc, log, timeout)
        # Listening comes before the guest user exists: wait for a real login.
        deadline = time.monotonic() + timeout
        while True:
            try:
                with kombu.Connection(self.url, connect_timeout=2) as conn:
                    conn.connect()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        _stop_group(self.proc, grace=30)
        # epmd daemonises out of the server's process group: stop ours by its port.
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        subprocess.run(
            [epmd, "-kill"],
            env={**self.env, "ERL_EPMD_PORT": str(self.epmd_port)},
            capture_output=True,
            check=False,
            timeout=10,
        )


@contextmanager
def rabbitmq_server(directory: Path) -> Iterator[RabbitMQServer]:
    server = RabbitMQServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()


def redis_caches(url: str, breaker_seconds: float = 5.0) -> dict:
    """settings.CACHES as BERTH_CACHE_URL=url makes them (portal/settings.py)."""

    def one(prefix: str) -> dict:
        return {
            "BACKEND": "kit.cache.ResilientRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"breaker_seconds": breaker_seconds},
        }

    return {
        "default": one("berth"),
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "manifests": one("berth-manifests"),
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A Redis server shared by the session (database 0; tests may use others)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url()


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory) -> Iterator[str]:
    """A RabbitMQ node shared by the session."""
    with rabbitmq_server(tmp_path_factory.mktemp("rabbitmq")) as server:
        yield server.url


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()
