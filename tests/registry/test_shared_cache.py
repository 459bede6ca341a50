"""The shared cache (BERTH_CACHE_URL, a real redis-server): lookups, proofs and
throttle counters shared through Redis, and every request still correct with
Redis dead, blackholed, cut off in the middle of a write, or restarted."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import redis
from django.core.cache import caches
from django.test import Client

from kit.cache import breaker
from registry.services import cache
from registry.services.manifests import manifest_get
from tests.conftest import ADMIN, BerthServer, basic, refused_at_start
from tests.servers import RedisServer, redis_caches
from tests.support import free_port, wait_until

from .helpers import InProcess, Remote


def use_caches(settings, url: str, breaker_seconds: float = 5.0) -> None:
    settings.CACHES = redis_caches(url, breaker_seconds)
    settings.BERTH_MANIFEST_CACHE_TTL = 60
    breaker.reset()
    cache.reset()


@pytest.fixture
def raw(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return client


@pytest.fixture
def shared(settings, redis_url, raw) -> str:
    use_caches(settings, redis_url)
    yield redis_url
    breaker.reset()


@pytest.fixture
def reg(v2) -> InProcess:
    return InProcess(v2)


class Proxy:
    """A TCP proxy to Redis that can be cut (connections closed, new ones
    refused) and restored: a network partition that leaves Redis's data alone."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.cut_off = False
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    def cut(self) -> None:
        self.cut_off = True
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.conns = []

    def restore(self) -> None:
        self.cut_off = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def blackhole(blackhole_port: int) -> str:
    """A Redis URL whose server accepts connections and never answers."""
    return f"redis://127.0.0.1:{blackhole_port}/0"


# With Redis up ------------------------------------------------------------------


def test_lookups_live_in_redis_and_cost_no_query(shared, raw, v2, reg, django_assert_num_queries):
    digest, body = reg.push_image("cache/shared", "v1")
    assert manifest_get(repository_name="cache/shared", reference="v1").digest == digest
    entries = raw.keys("berth-manifests:*:m:*")
    assert len(entries) == 1
    # Bounded lifetime: the window of a missed invalidation.
    assert 0 < raw.ttl(entries[0]) <= 60
    with django_assert_num_queries(0):
        assert manifest_get(repository_name="cache/shared", reference="v1").payload == body


def test_a_cached_lookup_is_one_round_trip_on_one_client(shared, raw, v2, reg):
    """A hit reads the generation and the entry with one MGET, through the
    same redis.Redis every time (Django's client would build one per command)."""
    reg.push_image("cache/trips", "v1")
    manifest_get(repository_name="cache/trips", reference="v1")  # the miss fills it
    backend = caches["manifests"]._cache
    assert backend.get_client() is backend.get_client()
    raw.config_resetstat()
    for _ in range(3):
        manifest_get(repository_name="cache/trips", reference="v1")
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in raw.info("commandstats").items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))
    }
    assert calls == {"mget": 3}


def test_an_entry_from_an_older_generation_is_never_served(shared, raw, v2, reg):
    reg.push_image("cache/older", "v1")
    slot, _ = cache.find("cache/older", "v1")  # a reader misses...
    stale = manifest_get(repository_name="cache/older", reference="v1")
    new_digest, _ = reg.push_image("cache/older", "v1")  # ...a retag commits...
    assert manifest_get(repository_name="cache/older", reference="v1").digest == new_digest
    cache.put(slot, stale)  # ...and the slow reader overwrites the fresh entry
    assert manifest_get(repository_name="cache/older", reference="v1").digest == new_digest


def test_a_write_on_one_replica_is_seen_by_the_others(shared, raw, v2, reg):
    """What another replica reads is only what Redis holds: drop everything
    this process keeps, and the retag is still seen at once."""
    reg.push_image("cache/replica", "v1")
    assert v2.get("/v2/cache/replica/manifests/v1").status_code == 200
    generation = raw.get(raw.keys("berth-manifests:*:g:*")[0])
    new_digest, _ = reg.push_image("cache/replica", "v1")
    assert int(raw.get(raw.keys("berth-manifests:*:g:*")[0])) > int(generation)
    assert v2.get("/v2/cache/replica/manifests/v1")["Docker-Content-Digest"] == new_digest


def test_verified_passwords_and_throttle_counts_are_shared(shared, raw, v2, settings):
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 3
    owner = Client(HTTP_AUTHORIZATION=basic(*ADMIN))
    assert owner.get("/service/token?service=harbor-registry").status_code == 200
    proofs = raw.keys("berth:*:cred:*")
    assert len(proofs) == 1
    assert b"argon2" not in raw.get(proofs[0]) and b"md5" not in raw.get(proofs[0])
    attacker = Client(HTTP_AUTHORIZATION=basic("admin", "Guess1234"), REMOTE_ADDR="10.6.6.6")
    for _ in range(3):
        assert attacker.get("/service/token?service=harbor-registry").status_code == 401
    caches["local"].clear()  # another process: only Redis remembers the failures
    assert attacker.get("/service/token?service=harbor-registry").status_code == 429
    assert len(raw.keys("berth:*:login-fail:*")) == 1


# With Redis gone -----------------------------------------------------------------


def test_every_request_works_with_redis_down(settings, v2, reg):
    use_caches(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    digest, body = reg.push_image("cache/down", "v1")
    for _ in range(2):
        r = v2.get("/v2/cache/down/manifests/v1")
        assert r.status_code == 200 and r.content == body
    token = Client(HTTP_AUTHORIZATION=basic(*ADMIN)).get(
        "/service/token?service=harbor-registry&scope=repository:cache/down:pull"
    )
    assert token.status_code == 200
    api = Client(HTTP_AUTHORIZATION=basic(*ADMIN))
    assert api.get("/api/v2.0/users/current").status_code == 200
    assert v2.delete(f"/v2/cache/down/manifests/{digest}").status_code == 202
    assert v2.get("/v2/cache/down/manifests/v1").status_code == 404


def test_login_throttle_falls_back_to_counting_per_process(settings, v2):
    use_caches(settings, f"redis://127.0.0.1:{free_port()}/0")
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 3
    attacker = Client(HTTP_AUTHORIZATION=basic("admin", "Guess1234"), REMOTE_ADDR="10.6.6.6")
    statuses = [
        attacker.get("/service/token?service=harbor-registry").status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    owner = Client(HTTP_AUTHORIZATION=basic(*ADMIN), REMOTE_ADDR="10.1.1.1")
    assert owner.get("/service/token?service=harbor-registry").status_code == 200


def test_a_hung_redis_costs_one_timeout_not_one_per_request(
    settings, v2, reg, blackhole, monkeypatch
):
    """Counted, not timed: the breaker stays open far longer than the requests
    take on any machine, and each Redis call that timed out opens it."""
    reg.push_image("cache/hung", "v1")
    use_caches(settings, blackhole, breaker_seconds=3600)
    timeouts: list[str] = []
    failed = breaker.failed
    monkeypatch.setattr(breaker, "failed", lambda *args: (timeouts.append(args[0]), failed(*args)))
    for _ in range(20):
        assert v2.get("/v2/cache/hung/manifests/v1").status_code == 200
    # One read timeout (0.5 s) opens the breaker; the other 19 skip Redis.
    assert timeouts == [blackhole]


# Redis failing in the middle -------------------------------------------------------


def test_missed_invalidation_is_retried_and_never_served_by_the_writer(
    settings, v2, reg, redis_url, raw
):
    proxy = Proxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    try:
        use_caches(settings, f"redis://127.0.0.1:{proxy.port}/0", breaker_seconds=0.2)
        reg.push_image("cache/missed", "v1")
        assert v2.get("/v2/cache/missed/manifests/v1").status_code == 200  # cached
        (generation_key,) = raw.keys("berth-manifests:*:g:*")
        before = int(raw.get(generation_key))
        proxy.cut()  # Redis unreachable while the retag commits: its bump fails
        new_digest, _ = reg.push_image("cache/missed", "v1")
        assert cache._missed
        assert int(raw.get(generation_key)) == before  # the stale entry is still current
        # This process never serves its own write stale: while the bump is
        # pending, its lookups skip the cache...
        assert v2.get("/v2/cache/missed/manifests/v1")["Docker-Content-Digest"] == new_digest
        proxy.restore()
        time.sleep(0.3)  # outlasts the breaker's 0.2 s, opened before: slowness only adds
        # ...and its first lookup once Redis answers bumps the generation
        # first, so no replica serves the old entry either.
        assert v2.get("/v2/cache/missed/manifests/v1")["Docker-Content-Digest"] == new_digest
        assert int(raw.get(generation_key)) > before
        assert not cache._missed
    finally:
        proxy.close()


def test_missed_invalidation_is_retried_in_the_background(settings, v2, reg, redis_url, raw):
    """No lookup needed: the process's retry thread bumps once Redis is back."""
    proxy = Proxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    try:
        use_caches(settings, f"redis://127.0.0.1:{proxy.port}/0", breaker_seconds=0.2)
        reg.push_image("cache/background", "v1")
        assert v2.get("/v2/cache/background/manifests/v1").status_code == 200
        (generation_key,) = raw.keys("berth-manifests:*:g:*")
        before = int(raw.get(generation_key))
        proxy.cut()
        reg.push_image("cache/background", "v1")
        proxy.restore()
        wait_until(lambda: int(raw.get(generation_key)) != before, interval=0.1, what="bumped")
        assert int(raw.get(generation_key)) > before
    finally:
        proxy.close()


@pytest.mark.live
def test_a_restarted_redis_serves_nothing_old(settings, v2, reg, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        use_caches(settings, server.url(), breaker_seconds=0.2)
        reg.push_image("cache/restart", "v1")
        assert v2.get("/v2/cache/restart/manifests/v1").status_code == 200
        server.stop()
        new_digest, _ = reg.push_image("cache/restart", "v1")  # bump missed: Redis is down
        assert v2.get("/v2/cache/restart/manifests/v1")["Docker-Content-Digest"] == new_digest
        server.start()
        time.sleep(0.3)  # outlasts the breaker's 0.2 s, opened before: slowness only adds
        for _ in range(2):  # a miss that fills the new Redis, then a hit
            r = v2.get("/v2/cache/restart/manifests/v1")
            assert r["Docker-Content-Digest"] == new_digest
        assert redis.Redis.from_url(server.url()).keys("berth-manifests:*:m:*")
    finally:
        server.stop()


# Live replicas -----------------------------------------------------------------------


@pytest.mark.parametrize("cache_mode", ["shared", "off"])
def test_replicas_never_serve_a_tag_another_replica_moved(tmp_path, redis_url, cache_mode):
    """Two live replicas on one database: a retag through one is what the other
    serves next — through the shared cache, or with BERTH_MANIFEST_CACHE=off."""
    env = {"BERTH_SECRET_KEY": "replicas-share-this-key-" + "x" * 30}
    if cache_mode == "shared":
        env["BERTH_CACHE_URL"] = redis_url.rsplit("/", 1)[0] + "/5"
        redis.Redis.from_url(env["BERTH_CACHE_URL"]).flushdb()
    else:
        env["BERTH_MANIFEST_CACHE"] = "off"
    one = BerthServer(tmp_path / "one" / "data", env=env)
    two = BerthServer(tmp_path / "two" / "data", env=env)
    if one.database_url is None:  # SQLite: one file for both
        (tmp_path / "db").mkdir()
        one.database_url = f"sqlite:///{tmp_path / 'db' / 'berth.sqlite3'}"
    two.database_url = one.database_url
    try:
        one.start()
        two.start()
        one.create_projects(["cache"])
        pusher = Remote(one.url)
        first, _ = pusher.push_image("cache/replicas", "v1")
        url = f"{two.url}/v2/cache/replicas/manifests/v1"
        for _ in range(2):  # a miss, then (shared) a hit
            assert two.http.get(url).headers["Docker-Content-Digest"] == first
        moved, _ = pusher.push_image("cache/replicas", "v1")
        assert two.http.get(url).headers["Docker-Content-Digest"] == moved
        assert (
            pusher.http.delete(f"{one.url}/v2/cache/replicas/manifests/{moved}").status_code == 202
        )
        assert two.http.get(url).status_code == 404
        if cache_mode == "shared":
            cached = redis.Redis.from_url(env["BERTH_CACHE_URL"]).keys("berth-manifests:*:m:*")
            assert cached  # the lookups really went through Redis
    finally:
        two.stop()
        one.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BERTH_CACHE_URL": "http://cache:6379"}, "redis://, rediss:// or unix://"),
        ({"BERTH_MANIFEST_CACHE": "sometimes"}, "BERTH_MANIFEST_CACHE must be one of"),
        ({"BERTH_MANIFEST_CACHE": "shared"}, "needs BERTH_CACHE_URL"),
    ],
)
def test_a_wrong_cache_setting_stops_the_start(tmp_path, env, message):
    assert message in refused_at_start(tmp_path, **env)
