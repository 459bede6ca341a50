"""What every peer (a registry, or a physical limit like nginx) provides."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import procs

if TYPE_CHECKING:
    from bench.context import Context


class Unavailable(Exception):
    """This peer cannot be installed or run on this machine; the reason is recorded."""


class Peer:
    """A registry the harness can install, start, measure and stop.

    The life of a peer in a run: ``install`` (idempotent; may raise
    :class:`Unavailable`), ``prepare`` (private dependencies such as a database:
    not part of the start time), then ``launch`` + the harness waiting for the
    first 200 on ``/v2/`` (timed), the workloads, ``stop`` and ``teardown``.
    ``roots()`` are the PIDs whose process trees make up the registry for the
    memory measurements (dependencies included: a registry that needs a
    PostgreSQL counts it).
    """

    name = ""  # id used by --only / --skip and in result file names
    title = ""  # how tables name it
    kind = "registry"  # or "limit"
    auth_note = "no authentication (none configured)"
    settings_note = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.workdir = ctx.workdir / self.name
        self.port = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dep_roots: list[int] = []
        self.creds: tuple[str, str] | None = None
        self.notes: list[str] = []

    # -- lifecycle ------------------------------------------------------------
    def install(self) -> None:
        """Make the peer's software present (idempotent)."""

    def version(self) -> str:
        return "?"

    def prepare(self) -> None:
        """Create the (fresh, empty) data directories and start dependencies."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path in self.data_paths():
            shutil.rmtree(path, ignore_errors=True)

    def launch(self) -> None:
        """Start the registry's processes (returns at once)."""
        raise NotImplementedError

    def stop(self) -> None:
        for proc in reversed(self.procs):
            procs.stop(proc)
        self.procs = []

    def teardown(self) -> None:
        """Stop the registry and its dependencies (data and logs stay)."""
        self.stop()

    def remove_data(self) -> None:
        """Delete the data directories (the harness does it after the last
        measurement of the run: deleting many files costs CPU and disk time)."""
        paths = [str(p) for p in self.data_paths() if p.exists()]
        if paths:
            # rm -rf is several times faster than shutil.rmtree on a million entries.
            procs.run(["rm", "-rf", "--one-file-system", *paths], check=False, timeout=3600)

    def data_paths(self) -> list[Path]:
        return []

    def ensure_projects(self, names: list[str]) -> None:
        """Create the top-level namespaces the workloads push into, where the
        registry wants them created first (Harbor-style projects). Default: nothing."""

    # -- facts ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def roots(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None] + self.dep_roots

    def registry_roots(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def spawn(
        self, name: str, argv: list[Any], env: dict[str, str] | None = None, cwd: Any = None
    ) -> subprocess.Popen[bytes]:
        proc = procs.spawn(argv, log=self.log(name), env=env, cwd=cwd)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name}: {proc.args!r} exited with {proc.returncode}; "
                    f"log in {self.workdir}"
                )

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "version": self.version(),
            "auth": self.auth_note,
            "settings": self.settings_note,
            "notes": self.notes,
        }


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without proxies and without anything that configures Berth."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BERTH_", "PULP_", "DJANGO_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
        and k not in ("DATABASE_URL", "CELERY_BROKER_URL", "PYTHONDONTWRITEBYTECODE")
    }  # Registries cache their bytecode as installed servers do (a start compiles nothing).
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(extra)
    return env


def apt_install(ctx: Context, *packages: str) -> None:
    """Install Debian packages (as root) if the harness may install things."""
    if not ctx.allow_install:
        raise Unavailable(f"needs Debian packages {', '.join(packages)} (--no-install given)")
    if os.geteuid() != 0:
        raise Unavailable(f"needs Debian packages {', '.join(packages)} (installing needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    args = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    r = procs.run(args, env=env, check=False, timeout=900)
    if r.returncode != 0:
        procs.run(["apt-get", "update", "-qq"], env=env, timeout=900)
        procs.run(args, env=env, timeout=900)


def deb_version(package: str) -> str:
    r = procs.run(["dpkg-query", "-W", "-f=${Version}", package], check=False, timeout=30)
    return r.stdout.strip() if r.returncode == 0 else "?"
