"""Shared fixtures: an in-process /v2 client and a live Berth server process."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.test.client import ClientHandler

from portal.wsgi import LeanHandlerMixin
from tests.support import free_port, starting_a_server

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "Harbor12345"
ADMIN = ("admin", ADMIN_PASSWORD)
# Projects the registry tests push into (the first component of their names).
TEST_PROJECTS = [
    "a",
    "a10",
    "a11",
    "a12",
    "a13",
    "a2",
    "a3",
    "a4",
    "a5",
    "a6",
    "a7",
    "a8",
    "a9",
    "app",
    "artifacts",
    "c",
    "cache",
    "cat",
    "chk",
    "conformance",
    "conformance-main",
    "crash",
    "d",
    "dedupe",
    "del",
    "dst",
    "early",
    "h",
    "jobs",
    "live",
    "multi",
    "no",
    "nothing",
    "one",
    "pg",
    "r",
    "race",
    "ref",
    "restart",
    "s",
    "src",
    "team",
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _RegistryClientHandler(LeanHandlerMixin, ClientHandler):
    pass


class RegistryClient(Client):
    """Django's test client through the same lean handler /v2 uses in production."""

    def __init__(self, **defaults: object) -> None:
        super().__init__(**defaults)
        self.handler = _RegistryClientHandler(enforce_csrf_checks=True)


def pytest_configure(config: pytest.Config) -> None:
    """The test process's data directory and secret key: settings create
    nothing at import (kit/process.py), serve and migrate do, and the
    in-process tests run neither."""
    from kit.process import ensure_data_dir

    ensure_data_dir()


@pytest.fixture(autouse=True)
def _empty_caches():
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


@pytest.fixture(autouse=True)
def _events_delivered_by_the_test(settings):
    """In-process, no worker runs: events are delivered by calling
    kit.events.deliver(), not by a task published on commit."""
    from kit import events

    settings.BERTH_EVENT_REQUEST_ON_COMMIT = False
    events.reset()


@pytest.fixture(autouse=True)
def _audit_in_the_foreground(settings):
    """No background writer inside the test process (it would race the test
    database's teardown); tests that look at buffered events call flush()."""
    from accounts.services import usage
    from audit.services import discard

    settings.BERTH_AUDIT_BACKGROUND = False
    discard()
    usage.discard()
    yield
    discard()
    usage.discard()


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def rsa_key():
    """One 2048-bit RSA key for the run: generating one costs ~0.1 s of CPU,
    and every bootstrapped test would otherwise make its own."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def bootstrapped(transactional_db, fast_passwords, monkeypatch, rsa_key):
    """First start: admin (id 1) with ADMIN_PASSWORD, library, signing key (the
    run's one RSA key, stored by bootstrap's own code path)."""
    from types import SimpleNamespace

    from accounts.services import tokens
    from accounts.services.bootstrap import bootstrap

    monkeypatch.setattr(tokens, "rsa", SimpleNamespace(generate_private_key=lambda **_: rsa_key))
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    tokens.reset()
    bootstrap()
    yield
    tokens.reset()


@pytest.fixture
def test_projects(bootstrapped):
    from accounts.models import Project

    Project.objects.bulk_create(
        [Project(name=name, owner_id=1) for name in TEST_PROJECTS], ignore_conflicts=True
    )


@pytest.fixture
def v2(test_projects, tmp_path, settings) -> RegistryClient:
    """/v2 in-process as the sysadmin (Basic). Transactional: cache invalidation
    runs on commit, as in production."""
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "registry.storage.filesystem.FileSystemBlobStore",
            "OPTIONS": {"location": str(tmp_path / "registry")},
        },
    }
    return RegistryClient(HTTP_AUTHORIZATION=basic(*ADMIN))


def refused_at_start(data_dir: Path, **env: str) -> str:
    """``manage.py check`` with these BERTH_* settings (and no others) must
    fail; returns what it printed on stderr, for the caller to check."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env={**clean, "BERTH_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    return result.stderr


# Per server URL: the live databases created on it.
_live_databases: dict[str, list[str]] = {}


def _postgres_admin(url: str, *statements: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[tuple] = []
        for statement in statements:
            cur = conn.execute(statement)  # type: ignore[arg-type]
            if cur.description:
                rows.extend(cur.fetchall())
        return rows


def _drop_live_databases(url: str, names: list[str]) -> None:
    from psycopg import sql

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    _postgres_admin(url, *(drop.format(sql.Identifier(name)) for name in names))


def live_database_url(port: int, base: str | None = None) -> str | None:
    """With DATABASE_URL (or ``base``) on PostgreSQL, the URL of a fresh database
    for one live server (several run at once; the outer database is
    pytest-django's). They are dropped when the test process exits, not on
    stop(): a stopped server may be started again on the same data. Without it,
    None: the server uses SQLite in its data directory."""
    import atexit
    import urllib.parse

    from psycopg import sql

    url = base or os.environ.get("DATABASE_URL", "")
    if url.partition(":")[0] not in ("postgres", "postgresql", "pgsql", "psql"):
        return None
    if url not in _live_databases:
        _live_databases[url] = []
        atexit.register(_drop_live_databases, url, _live_databases[url])
        # Leftovers of test processes that died before they could drop theirs.
        found = _postgres_admin(
            url, "SELECT datname FROM pg_database WHERE datname LIKE 'berth_live_%'"
        )
        stale = []
        for (name,) in found:
            try:
                os.kill(int(name.split("_")[2]), 0)
            except ProcessLookupError:
                stale.append(name)
            except (ValueError, IndexError, PermissionError):
                pass
        _drop_live_databases(url, stale)
    name = f"berth_live_{os.getpid()}_{port}"
    _drop_live_databases(url, [name])
    _postgres_admin(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _live_databases[url].append(name)
    return urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()


class BerthServer:
    """``manage.py serve`` in a subprocess with its own data directory (and, when
    the tests run on PostgreSQL, its own database)."""

    def __init__(
        self,
        data_dir: Path,
        role: str = "web",
        env: dict[str, str] | None = None,
        database_url: str | None = None,
    ):
        self.data_dir = data_dir
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.addr}"
        self.role = role
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"berth-{self.port}.log"
        self.http = requests.Session()
        self.http.auth = ADMIN
        # A database of its own, unless given one (replicas share theirs).
        self.database_url = database_url or live_database_url(self.port)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update(
            {
                "BERTH_DATA_DIR": str(self.data_dir),
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "BERTH_LOG_LEVEL": "WARNING",
                "BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
                **self.extra_env,
            }
        )
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

    def start(self, timeout: float = 30) -> BerthServer:
        starting_a_server("Berth")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--role", self.role, "--addr", self.addr],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth exited early: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/v2/", timeout=1, auth=ADMIN).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"berth did not start: {self.log_path.read_text()[-3000:]}")

    def create_projects(self, names: list[str], public: bool = False) -> None:
        for name in names:
            r = self.http.post(
                f"{self.url}/api/v2.0/projects",
                json={"project_name": name, "metadata": {"public": str(public).lower()}},
            )
            assert r.status_code in (201, 409), r.text

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup runs anywhere."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        # Every part of the server died with it: the port no longer answers.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"something still listens on {self.addr} after SIGKILL")

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )


@pytest.fixture(scope="session")
def berth(tmp_path_factory) -> Iterator[BerthServer]:
    """One live Berth (web role) shared by the real-client tests."""
    server = BerthServer(tmp_path_factory.mktemp("berth") / "data").start()
    server.create_projects(TEST_PROJECTS)
    yield server
    server.stop()


@pytest.fixture
def fresh_berth(tmp_path) -> Iterator[BerthServer]:
    """A live Berth of the test's own (for tests that kill or fill it)."""
    server = BerthServer(tmp_path / "data")
    yield server
    server.stop()


from tests.deploy import (  # noqa: E402, F401 - Berth's image (tests/deploy.py)
    berth_image,
    deploy_docker,
)
from tests.roles import team  # noqa: E402, F401 - the `team` fixture, for every test package
from tests.servers import blackhole_port, rabbitmq_url, redis_url  # noqa: E402, F401 - session servers

# Fixtures that start (or share) a server outside the test process: a test
# using one is marked ``live`` (make test-fast leaves those out). Tests that
# start servers themselves carry the mark explicitly.
LIVE_FIXTURES = frozenset(
    {"berth", "fresh_berth", "redis_url", "rabbitmq_url", "minio", "berth_image", "deploy_docker"}
)


def pytest_itemcollected(item: pytest.Item) -> None:
    if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.live)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs the suite once per database. Tests marked
    ``dbindependent`` start their own servers and never touch the suite's
    database, so the second pass (BERTH_TEST_ONCE_DONE=1) leaves them out."""
    if os.environ.get("BERTH_TEST_ONCE_DONE") != "1":
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("dbindependent") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
