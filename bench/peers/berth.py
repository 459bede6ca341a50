"""Berth from this work tree: the embedded default and the scaled-out configuration."""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from bench import procs
from bench.context import REPO_ROOT
from bench.peers.base import Peer, Unavailable, clean_env
from bench.peers.nginx import front_config
from bench.peers.services import Postgres, Redis


def berth_version() -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read-only: never refresh the index
    try:
        rev = procs.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], env=env).stdout
        dirty = procs.run(
            ["git", "-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no"], env=env
        ).stdout.strip()
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return "?"
    return f"git {rev.strip()}" + (" (+ uncommitted changes)" if dirty else "")


class Berth(Peer):
    """``manage.py serve`` (role ``all``: web server, job worker and scheduler).

    The embedded default: SQLite and blobs on the local disk under one data
    directory, no other server. ``BERTH_ADMIN_PASSWORD`` is set so that once
    access control lands the admin exists and the harness authenticates as
    ``admin`` (token flow); until then /v2 is open and no token is used.
    """

    name = "berth"
    title = "Berth (embedded: SQLite, filesystem)"
    settings_note = (
        "manage.py serve (all roles: granian WSGI 1 process x 16 threads, Celery worker, "
        "beat), SQLite WAL synchronous=FULL, filesystem blobs, BERTH_LOG_LEVEL=WARNING"
    )

    def __init__(self, ctx, tree: Path = REPO_ROOT) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.tree = tree  # the source tree ``serve`` runs from (bench.ab: a git worktree)
        # Meets Harbor's password policy (8+ characters, upper, lower, digit).
        self.password = "Bench" + secrets.token_hex(8) + "Z9"
        self.creds = ("admin", self.password)
        self.extra_env: dict[str, str] = {}

    def install(self) -> None:
        py = self.ctx.berth_python
        r = procs.run([py, "-c", "import django, granian, celery"], check=False, cwd=REPO_ROOT)
        if r.returncode != 0:
            raise Unavailable(
                f"{py} cannot import Berth's dependencies (run `make run` or "
                f"`bash scripts/test-deps.sh` first): {r.stderr[-300:]}"
            )

    def version(self) -> str:
        return berth_version()

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def data_paths(self) -> list[Path]:
        return [self.data_dir]

    def env(self) -> dict[str, str]:
        return clean_env(
            BERTH_DATA_DIR=str(self.data_dir),
            BERTH_LOG_LEVEL="WARNING",
            BERTH_ADMIN_PASSWORD=self.password,
            DJANGO_SETTINGS_MODULE="portal.settings",
            **self.extra_env,
        )

    def prepare(self) -> None:
        super().prepare()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()

    @property
    def berth_addr(self) -> str:
        """Where Berth itself listens (the harness talks to ``host``)."""
        return self.host

    def launch(self) -> None:
        self.spawn(
            "berth",
            [self.ctx.berth_python, "manage.py", "serve", "--addr", self.berth_addr],
            env=self.env(),
            cwd=self.tree,
        )

    @property
    def database_url(self) -> str:
        """PostgreSQL's URL when the peer runs on it (the lock-wait sampler)."""
        return self.extra_env.get("DATABASE_URL", "")

    def _api(self, method: str, path: str, body: object) -> tuple[int, bytes]:
        auth = base64.b64encode(f"admin:{self.password}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(
                method,
                path,
                body=json.dumps(body) if body is not None else None,
                headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def set_storage_limit(self, project: str, limit: int) -> None:
        """Harbor's ``PUT /quotas/{id}`` on the project (the quota-on workload)."""
        status, data = self._api("GET", f"/api/v2.0/projects/{project}", None)
        if status != 200:
            raise RuntimeError(f"project {project}: {status} {data[:300]!r}")
        pid = json.loads(data)["project_id"]
        status, data = self._api("PUT", f"/api/v2.0/quotas/{pid}", {"hard": {"storage": limit}})
        if status != 200:
            raise RuntimeError(f"quota of {project}: {status} {data[:300]!r}")

    def ensure_projects(self, names: list[str]) -> None:
        """Create the projects through Berth's Harbor-compatible API (as admin).

        Like Harbor, Berth only accepts pushes into existing projects. A Berth
        without that API (before access control) answers 404: nothing to do.
        """
        auth = base64.b64encode(f"admin:{self.password}".encode()).decode()
        for name in names:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                body = json.dumps({"project_name": name, "metadata": {"public": "false"}})
                conn.request(
                    "POST",
                    "/api/v2.0/projects",
                    body=body,
                    headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            if resp.status == 404:
                return
            if resp.status not in (201, 409):
                raise RuntimeError(f"creating project {name}: {resp.status} {data[:300]!r}")

    @property
    def auth_note(self) -> str:  # type: ignore[override]
        return "token auth if Berth challenges (admin / BERTH_ADMIN_PASSWORD)"


class BerthScaled(Berth):
    """Berth on PostgreSQL + Redis with several web processes.

    Not available until Berth's scale-out milestone lands: the harness checks
    that Berth's Python environment has a PostgreSQL driver and a Redis client,
    and otherwise records why it skipped this configuration.
    """

    name = "berth-scaled"
    title = "Berth (scaled out: PostgreSQL + Redis)"
    settings_note = (
        "manage.py serve (all roles) with DATABASE_URL=postgres (private PostgreSQL), "
        "CELERY_BROKER_URL=redis and BERTH_CACHE_URL=redis (private Redis, db 0 and 1), "
        "BERTH_WEB_WORKERS=2"
    )

    def install(self) -> None:
        super().install()
        missing = [
            need
            for module, need in (
                ("psycopg", "DATABASE_URL=postgres support (a PostgreSQL driver)"),
                ("redis", "a Redis broker (the redis client for CELERY_BROKER_URL=redis://)"),
            )
            if procs.run(
                [self.ctx.berth_python, "-c", f"import {module}"], check=False, cwd=REPO_ROOT
            ).returncode
        ]
        if missing:
            raise Unavailable(
                "not available yet: needs " + " and ".join(missing) + " in Berth's environment "
                "(Berth's scale-out milestone)"
            )

    def prepare(self) -> None:
        super().prepare()
        self.pg = Postgres(self.workdir / "postgres").start()
        self.redis = Redis(self.workdir / "redis").start()
        assert self.pg.proc is not None and self.redis.proc is not None
        self.dep_roots = [self.pg.proc.pid, self.redis.proc.pid]
        url = self.pg.create_database("berth", "berth", "berth")
        self.extra_env = {
            "DATABASE_URL": url,
            # Redis database 0 for jobs, 1 for the shared cache (manifest lookups,
            # verified credentials, login throttle).
            "CELERY_BROKER_URL": self.redis.url,
            "BERTH_CACHE_URL": self.redis.url.rsplit("/", 1)[0] + "/1",
            "BERTH_WEB_WORKERS": "2",
        }

    def teardown(self) -> None:
        super().teardown()
        for svc in (getattr(self, "redis", None), getattr(self, "pg", None)):
            if svc is not None:
                svc.stop()

    def data_paths(self) -> list[Path]:
        pg = getattr(self, "pg", None)
        return super().data_paths() + ([pg.data] if pg is not None else [])


class BerthNginx(Berth):
    """The embedded default behind nginx with Berth's shipped configuration
    (deploy/nginx/berth.conf): Berth authorizes blob GETs and nginx sends the
    files (X-Accel-Redirect, sendfile). Everything else is proxied to Berth."""

    name = "berth-nginx"
    title = "Berth (embedded) behind nginx (deploy/nginx/berth.conf)"
    settings_note = (
        "as berth, plus nginx in front with deploy/nginx/berth.conf "
        "(BERTH_BLOB_X_ACCEL_REDIRECT=/_berth_blobs/, sendfile)"
    )

    def install(self) -> None:
        super().install()
        if not shutil.which("nginx"):
            raise Unavailable("nginx is not installed (the nginx peer installs it)")

    def prepare(self) -> None:
        super().prepare()
        self.berth_port = procs.free_port()
        self.extra_env = {"BERTH_BLOB_X_ACCEL_REDIRECT": "/_berth_blobs/"}

    @property
    def berth_addr(self) -> str:
        return f"127.0.0.1:{self.berth_port}"

    def launch(self) -> None:
        super().launch()
        nginx_dir = self.workdir / "nginx"
        blobs = self.data_dir / "registry" / "blobs"
        conf = front_config(nginx_dir, self.berth_addr, self.host, blobs)
        (nginx_dir / "nginx.conf").write_text(conf)
        self.spawn(
            "nginx", ["nginx", "-p", nginx_dir, "-c", nginx_dir / "nginx.conf"], env=clean_env()
        )
