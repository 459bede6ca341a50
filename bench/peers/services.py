"""Private PostgreSQL and Redis servers for the peers that need them.

Both listen only on 127.0.0.1 on a free port, keep their data under the peer's
work directory and are stopped by the harness; the machine's own services (if
any) are never touched. PostgreSQL runs as the ``postgres`` user (Debian's
packages create it) through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from bench import procs
from bench.peers.base import Unavailable, deb_version


def _pg_bindir() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin/postgres")), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise Unavailable("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return versions[-1].parent


class Postgres:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = procs.free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.data = workdir / "pgdata"
        self.sock = workdir / "pgsock"

    @staticmethod
    def version() -> str:
        try:
            return f"PostgreSQL {_pg_bindir().parent.name} ({deb_version('postgresql')})"
        except Unavailable:
            return "?"

    def _as_postgres(self, *argv: str | os.PathLike[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *[os.fspath(a) for a in argv]]

    def start(self) -> Postgres:
        bindir = _pg_bindir()
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise Unavailable("no postgres user (install Debian's postgresql)") from exc
        for d in (self.workdir, self.data, self.sock):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.data, self.sock):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        self.data.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            procs.run(
                self._as_postgres(
                    bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres"
                ),
                timeout=300,
            )
        self.proc = procs.spawn(
            self._as_postgres(
                bindir / "postgres",
                "-D",
                self.data,
                "-p",
                str(self.port),
                "-k",
                self.sock,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ),
            log=self.workdir / "postgres.log",
        )
        procs.wait_for(
            lambda: self.psql("SELECT 1", check=False).returncode == 0,
            timeout=60,
            interval=0.2,
            what="postgres",
        )
        return self

    def psql(
        self, sql: str, db: str = "postgres", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"postgres exited: {(self.workdir / 'postgres.log').read_text()[-2000:]}"
            )
        return procs.run(
            self._as_postgres(
                "psql", "-h", self.sock, "-p", str(self.port), "-d", db, "-v", "ON_ERROR_STOP=1",
                "-qAtc", sql,
            ),
            timeout=120,
            check=check,
        )  # fmt: skip

    def create_database(self, name: str, user: str, password: str) -> str:
        """Create a role and a database it owns; returns a postgres:// URL.
        (The names are the harness's own constants, never outside input.)"""
        for value in (name, user, password):
            if not value.isidentifier():
                raise ValueError(f"not a plain identifier: {value!r}")
        role_q = f"SELECT 1 FROM pg_roles WHERE rolname='{user}'"  # noqa: S608
        if not self.psql(role_q).stdout.strip():
            self.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}' CREATEDB")
        db_q = f"SELECT 1 FROM pg_database WHERE datname='{name}'"  # noqa: S608
        if not self.psql(db_q).stdout.strip():
            self.psql(f"CREATE DATABASE {name} OWNER {user}")
        return f"postgres://{user}:{password}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        procs.stop(self.proc, timeout=30)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = procs.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def version() -> str:
        return f"Redis {deb_version('redis-server')}"

    def start(self) -> Redis:
        if not shutil.which("redis-server"):
            raise Unavailable("redis-server not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = procs.spawn(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.workdir,
            ],
            log=self.workdir / "redis.log",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = procs.run(["redis-cli", "-p", str(self.port), "ping"], check=False, timeout=10)
            if r.stdout.strip() == "PONG":
                return self
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)
        self.proc = None
