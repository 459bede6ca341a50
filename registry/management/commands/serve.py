"""``manage.py serve``: migrate, then run the web server, a Celery worker and the
Celery scheduler in the foreground; Ctrl-C (or SIGTERM) stops them cleanly.

``--role web|worker|scheduler|all`` runs one part only, for scaled-out
deployments (docs/scale-out.md). With ``all`` (the embedded default) the
scheduler runs as a thread of the worker process (portal/celery.py,
``ThreadedBeat``): one Python process, and one copy of Django, fewer.

Start-up is on the path to the first answer, so ``serve`` starts the web child
first and migrates (only when migrations are unapplied) and bootstraps while the
child imports Django; the child takes requests once that is done (a gate file,
portal/wsgi.py). Django's system checks run while the children start (an error
still stops everything), none in the Celery children (``CELERY_SKIP_CHECKS``:
``serve`` ran them). Then it replaces itself with ``registry.supervisor``, which supervises the
children without Django in memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from accounts.services.bootstrap import bootstrap
from kit import health
from kit.db import fresh
from kit.process import ensure_data_dir, parent_death_signal
from registry import supervisor

ROLES = ("all", "web", "worker", "scheduler")
# What start-up does not copy into BERTH_DATA_DIR/static (besides Django's
# defaults): drf-spectacular-sidecar's ReDoc (Berth serves Swagger UI only) and
# the source maps (only a browser's developer tools ask for them): 2 MiB
# instead of 9.
STATIC_LEFT_OUT = ["redoc", "*.map"]
# pg_advisory_lock key serialising `migrate` + bootstrap across replicas ("berth").
MIGRATION_LOCK = 0x6265727468


def web_command(addr: str) -> list[str]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"BERTH_ADDR must be host:port, got {addr!r}")
    return [
        sys.executable, "-m", "kit.web",  # granian (kit/web.py)
        "--interface", "wsgi",
        "--host", host.strip("[]"),
        "--port", port,
        "--workers", str(settings.BERTH_WEB_WORKERS),
        "--blocking-threads", str(settings.BERTH_WEB_THREADS),
        "--http", "1",
        "--no-ws",
        "--http1-header-read-timeout", str(settings.BERTH_HEADER_TIMEOUT * 1000),
        "--respawn-failed-workers",
        # The admin's and portal's static files, collected at start, served by
        # granian itself (no Python per file).
        "--static-path-route", "/" + settings.STATIC_URL.strip("/"),
        "--static-path-mount", str(settings.STATIC_ROOT),
        "--workers-kill-timeout", "15",
        # granian's INFO lines (starting, spawning, stopping) say nothing
        # serve does not: its own from WARNING up (ERROR if Berth's is higher).
        "--log-level", _at_least_warning(settings.LOG_LEVEL).lower(),
        "--factory", "portal.wsgi:served_application",
    ]  # fmt: skip


def _at_least_warning(level: str) -> str:
    return level if level in ("ERROR", "CRITICAL") else "WARNING"


# Celery warns that a worker runs as root (as in Berth's container and on test
# machines). The risk it names is pickle: Berth's tasks accept JSON only
# (CELERY_ACCEPT_CONTENT), and Celery refuses to start as root with pickle
# whatever this filter says.
_NOT_ROOT_ADVICE = ["-W", "ignore:You're running the worker with superuser privileges"]


def worker_command() -> list[str]:
    return [
        sys.executable, *_NOT_ROOT_ADVICE, "-m", "celery", "-A", "portal", "--quiet", "worker",
        "--pool", "threads", "--concurrency", "2",
        "--loglevel", settings.LOG_LEVEL,
        "--hostname", f"berth-worker-{os.getpid()}@%h",
    ]  # fmt: skip


def scheduler_command() -> list[str]:
    return [
        sys.executable, *_NOT_ROOT_ADVICE, "-m", "celery", "-A", "portal", "--quiet", "beat",
        "--loglevel", settings.LOG_LEVEL,
        "--schedule", str(settings.DATA_DIR / "celerybeat-schedule"),
        "--pidfile", "",
    ]  # fmt: skip


@contextmanager
def _one_replica_at_a_time() -> Iterator[None]:
    """Web replicas started together migrate and bootstrap one after the other
    (the next finds nothing left to do) instead of racing to create the same
    tables. PostgreSQL: a session advisory lock, released with the connection if
    the process dies. SQLite serves one machine: nothing to take."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])


def migrations_pending() -> bool:
    """Whether ``migrate`` has anything to do: a plan check (~25 ms) instead of
    a ``migrate`` run that finds nothing (~70-200 ms, post-migrate handlers
    included)."""
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def public_url(addr: str) -> str:
    """The URL to give users: BERTH_EXTERNAL_URL, or the listen address, with
    a wildcard host (0.0.0.0, ::) shown as this machine's loopback address."""
    if settings.BERTH_EXTERNAL_URL:
        return settings.BERTH_EXTERNAL_URL
    host, _, port = addr.rpartition(":")
    wildcard = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104
    host = wildcard.get(host, host)
    return f"http://{host}:{port}"


def startup_summary(role: str, addr: str) -> list[str]:
    """What a user needs once Berth runs: where to reach it, where its data is,
    how to log in. Never a secret: the generated password stays in its file."""
    if role not in ("all", "web"):
        return [f"Berth {role} running (data: {settings.DATA_DIR})"]
    url = public_url(addr)
    registry = url.partition("://")[2].rstrip("/")
    generated = settings.DATA_DIR / "initial-admin-password"
    password = (
        f"generated, in {generated}"
        if generated.exists()
        else "the BERTH_ADMIN_PASSWORD of the first start (or as changed since)"
    )
    return [
        f"Berth is running at {url} (listening on {addr}; Ctrl-C stops it)",
        f"  data:     {settings.DATA_DIR}",
        f"  admin:    user admin, password {password}",
        f"  log in:   docker login {registry} -u admin",
        f"  API:      {url}/api/v2.0/projects (docs/api.md)",
    ]


class Command(BaseCommand):
    help = "Run Berth: migrate, then the web server, job worker and scheduler."
    # Run explicitly, while the children start (see handle()).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", choices=ROLES, default="all")
        parser.add_argument("--addr", default=None, help="host:port (default: BERTH_ADDR)")
        parser.add_argument("--no-migrate", action="store_true")

    def handle(
        self, *args: Any, role: str, addr: str | None, no_migrate: bool, **opts: Any
    ) -> None:
        ensure_data_dir()  # the data directory and secret key, before any part starts
        if role in ("all", "web"):
            call_command(
                "collectstatic", interactive=False, verbosity=0, ignore_patterns=STATIC_LEFT_OUT
            )
        addr = addr or settings.BERTH_ADDR
        commands: dict[str, list[str]] = {}
        if role in ("all", "web"):
            commands["web"] = web_command(addr)
        if role in ("all", "worker"):
            commands["worker"] = worker_command()
        if role == "scheduler":
            commands["scheduler"] = scheduler_command()
        self._supervise(
            commands, prepare=role in ("all", "web") and not no_migrate, role=role, addr=addr
        )

    def _prepare_database(self) -> None:
        with _one_replica_at_a_time():
            # A first start creates the migrations' final tables at once (kit/db/fresh.py).
            if not fresh.create_if_empty() and migrations_pending():
                call_command("migrate", interactive=False, verbosity=0)
            try:
                bootstrap()
            except ImproperlyConfigured as exc:  # a weak BERTH_ADMIN_PASSWORD
                raise CommandError(str(exc)) from None

    def _supervise(
        self, commands: dict[str, list[str]], *, prepare: bool, role: str, addr: str
    ) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
        env["BERTH_DATA_DIR"] = str(settings.DATA_DIR)
        env["CELERY_SKIP_CHECKS"] = "1"  # run here, once (below)
        # Readiness answers 503 while this file exists (registry/supervisor.py,
        # mark_not_ready): one per server, removed when it starts and stops.
        health.use_drain_file(settings.DATA_DIR / f"draining-{os.getpid()}")
        env["BERTH_DRAIN_FILE"] = os.environ["BERTH_DRAIN_FILE"]
        env.pop("BERTH_WORKER_BEAT", None)
        if "worker" in commands and "web" in commands:
            # The embedded default (role all): the scheduler runs as a thread of
            # the one worker (portal/celery.py, ThreadedBeat), not as a process.
            env["BERTH_WORKER_BEAT"] = str(settings.DATA_DIR / "celerybeat-schedule")
        children: dict[str, int] = {}
        procs: list[subprocess.Popen[bytes]] = []  # kept: nothing reaps them behind our back
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        # Each part gets SIGTERM when the supervisor dies.
        pre_exec = parent_death_signal(signal.SIGTERM)
        gate = settings.DATA_DIR / f"schema-gate-{os.getpid()}"
        if prepare:
            # The web child imports Django while this process migrates and
            # bootstraps (two cores at once); it answers only once the gate is
            # gone (portal/wsgi.py), so no request meets a missing table.
            gate.touch()
            env["BERTH_SCHEMA_GATE"] = str(gate)

        def spawn(name: str) -> None:
            # Same process group as the supervisor (Ctrl-C and kill -9 of the
            # group reach every part), and a parent-death signal so no part
            # outlives a supervisor that was killed alone.
            # The Celery children serve no page: BERTH_PROCESS_ROLE spares them
            # the admin's autodiscovery (portal/settings.py).
            child_env = env if name == "web" else {**env, "BERTH_PROCESS_ROLE": name}
            procs.append(subprocess.Popen(commands[name], env=child_env, preexec_fn=pre_exec))
            children[name] = procs[-1].pid

        try:
            if "web" in commands:
                spawn("web")
            if prepare:
                self._prepare_database()
                gate.unlink()
            for name in commands:
                if name not in children:
                    spawn(name)  # the worker and scheduler use the schema at once
            # The system checks run while the children import Django; an error
            # stops everything, as before the children ran.
            self.check()
        except BaseException:
            if gate.exists() and "web" in children:
                # The web server has taken no request yet (it waits for the
                # gate), and its worker would not see a SIGTERM sent while it
                # imports Django: nothing to drain, stop it at once.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(children.pop("web"), signal.SIGKILL)
            supervisor.stop_children(children)
            raise
        finally:
            gate.unlink(missing_ok=True)
        # From here to the supervisor's own handlers (after exec) a Ctrl-C or
        # SIGTERM is held, not lost and not fatal: blocked signals stay pending
        # across exec, and supervisor.supervise unblocks them once it handles
        # them (before this, a Ctrl-C in that gap killed serve with SIGINT).
        signal.pthread_sigmask(signal.SIG_BLOCK, supervisor.STOP_SIGNALS)
        if stopping:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, supervisor.STOP_SIGNALS)
            supervisor.mark_not_ready()
            supervisor.stop_children(children)
            return
        self.stdout.write("\n".join(startup_summary(role, addr)))
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        self.stdout.flush()
        os.execv(  # noqa: S606 (our own interpreter and file, no shell)
            sys.executable,
            # -I: the standard library only, nothing from the environment or cwd.
            [sys.executable, "-I", supervisor.__file__]
            + [f"{name}={pid}" for name, pid in children.items()],
        )
