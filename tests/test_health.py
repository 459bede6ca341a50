"""Probes: liveness, readiness (database, storage, broker, cache; draining) and
Harbor's /api/v2.0/health, answered from real dependencies."""

from __future__ import annotations

import time

import pytest
import requests
from django.test import Client

from kit import health
from kit.cache import breaker
from portal.celery import app
from tests.conftest import BerthServer
from tests.servers import redis_caches
from tests.support import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "registry.storage.filesystem.FileSystemBlobStore",
            "OPTIONS": {"location": str(tmp_path / "registry")},
        },
    }
    breaker.reset()
    yield
    health.set_draining(False)
    breaker.reset()


def use_broker(monkeypatch, url: str) -> None:
    """The broker at ``url``, as settings configure it: kombu picks the transport
    by the URL's scheme (settings name one only for the default filesystem://)."""
    monkeypatch.setattr(app.conf, "broker_url", url)
    monkeypatch.setitem(app.conf, "broker_transport", None)


def statuses(body: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["components"]}


def test_liveness_checks_nothing(settings, monkeypatch):
    use_broker(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    r = Client().get("/livez")
    assert r.status_code == 200
    assert r.json() == {"status": "healthy"}


def test_ready_when_every_dependency_answers():
    r = Client().get("/readyz")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "healthy"
    assert statuses(r.json()) == {"database": "healthy", "storage": "healthy", "broker": "healthy"}


def test_ready_checks_the_shared_cache_and_a_redis_broker(settings, redis_url, monkeypatch):
    settings.BERTH_CACHE_URL = redis_url
    settings.CACHES = redis_caches(redis_url)
    use_broker(monkeypatch, redis_url)
    r = Client().get("/readyz")
    assert r.status_code == 200, r.content
    assert statuses(r.json())["cache"] == "healthy"
    assert statuses(r.json())["broker"] == "healthy"


def test_unready_names_a_dead_cache(settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.BERTH_CACHE_URL = dead
    settings.CACHES = redis_caches(dead)
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert statuses(r.json()) == {
        "database": "healthy",
        "storage": "healthy",
        "broker": "healthy",
        "cache": "unhealthy",
    }
    assert "127.0.0.1" not in r.content.decode()  # no addresses in the answer


def test_unready_names_a_dead_broker(monkeypatch):
    use_broker(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert statuses(r.json())["broker"] == "unhealthy"
    assert statuses(r.json())["database"] == "healthy"


def test_a_hung_broker_fails_readiness_within_the_timeout(settings, monkeypatch, blackhole_port):
    settings.BERTH_READY_TIMEOUT = 0.5
    use_broker(monkeypatch, f"amqp://guest:guest@127.0.0.1:{blackhole_port}//")
    started = time.monotonic()
    r = Client().get("/readyz")
    assert time.monotonic() - started < 2
    assert r.status_code == 503
    assert statuses(r.json())["broker"] == "unhealthy"


def test_unready_names_unusable_storage(settings, tmp_path):
    (tmp_path / "a-file").write_bytes(b"")
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "registry.storage.filesystem.FileSystemBlobStore",
            "OPTIONS": {"location": str(tmp_path / "a-file" / "registry")},
        },
    }
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert statuses(r.json())["storage"] == "unhealthy"


def test_draining_is_unready():
    health.set_draining()
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "draining"
    assert Client().get("/livez").status_code == 200
    health.set_draining(False)
    assert Client().get("/readyz").status_code == 200


def test_harbor_health_lists_components_under_harbors_names(settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.BERTH_CACHE_URL = dead
    settings.CACHES = redis_caches(dead)
    r = Client().get("/api/v2.0/health")
    assert r.status_code == 200  # Harbor answers 200 and says what is unhealthy
    assert r.json()["status"] == "unhealthy"
    assert statuses(r.json()) == {
        "core": "healthy",
        "database": "healthy",
        "registry": "healthy",
        "jobservice": "healthy",
        "redis": "unhealthy",
    }


@pytest.mark.django_db(transaction=False)
@pytest.mark.live
def test_draining_reaches_the_web_processes_through_the_drain_file(tmp_path, monkeypatch):
    """serve names one drain file per server for its children; its supervisor
    creates it on SIGTERM (registry/supervisor.py); every web process's
    readiness then answers 503 while liveness stays 200."""
    server = BerthServer(tmp_path / "data").start()
    drain = server.data_dir / f"draining-{server.proc.pid}"
    try:
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
        monkeypatch.setenv("BERTH_DRAIN_FILE", str(drain))  # restored afterwards
        health.set_draining()  # what the supervisor's mark_not_ready does
        assert drain.exists()
        r = requests.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json()["status"] == "draining"
        assert requests.get(f"{server.url}/livez", timeout=10).status_code == 200
        health.set_draining(False)
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        health.set_draining(False)
        server.stop()
