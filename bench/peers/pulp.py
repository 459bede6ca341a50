"""Pulp (pulpcore + pulp-container from PyPI): the other Django-based registry.

Installed into its own virtualenv under bench/tmp. Runs as Pulp's OCI images
run it: ``pulpcore-api`` (gunicorn, 2 workers; serves /v2), ``pulpcore-content``
(aiohttp, 2 workers; serves blobs after a redirect), one ``pulpcore-worker``,
a private PostgreSQL and a private Redis for Pulp's response cache
(``CACHE_ENABLED``: Pulp's fastest configuration), and pulp-container's
token authentication on (its default: ES256 keys made for the run, token
server at ``/token/`` of the API), so clients check the password once per
token, as with Berth. With token auth off, Pulp checks the admin's password
(Django PBKDF2) on every request: a first try measured about 1 manifest GET per
second that way.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

from bench import procs
from bench.context import TMP_DIR
from bench.peers.base import Peer, Unavailable, clean_env
from bench.peers.services import Postgres, Redis

PULP_PACKAGES = ["pulpcore==3.123.1", "pulp-container==2.30.0"]
VENV = TMP_DIR / "pulp-venv"
API_WORKERS = 2
CONTENT_WORKERS = 2


class Pulp(Peer):
    name = "pulp"
    title = "Pulp (pulpcore + pulp-container)"
    auth_note = "pulp-container token auth (ES256) as admin"
    settings_note = (
        f"pulpcore-api {API_WORKERS} gunicorn workers, pulpcore-content {CONTENT_WORKERS} "
        "workers, 1 pulpcore-worker, private PostgreSQL, Redis response cache on, filesystem "
        "storage"
    )

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.password = secrets.token_urlsafe(12)
        self.creds = ("admin", self.password)

    def bin(self, name: str) -> Path:
        return VENV / "bin" / name

    def install(self) -> None:
        stamp = VENV / ".bench-stamp"
        want = " ".join(PULP_PACKAGES)
        if stamp.exists() and stamp.read_text().strip() == want:
            return
        if not self.ctx.allow_install:
            raise Unavailable("Pulp is not installed (--no-install given)")
        self.ctx.log(f"installing {want} into {VENV}")
        if not (VENV / "bin" / "python").exists():
            procs.run([sys.executable, "-m", "venv", VENV], timeout=300)
        r = procs.run(
            [VENV / "bin" / "pip", "install", "-q", *PULP_PACKAGES], check=False, timeout=1800
        )
        if r.returncode != 0:
            raise Unavailable(f"pip install {want} failed: {r.stderr[-600:]}")
        stamp.write_text(want + "\n")

    def version(self) -> str:
        r = procs.run([self.bin("pip"), "list", "--format=freeze"], check=False, timeout=120)
        keep = [
            line
            for line in r.stdout.splitlines()
            if line.lower().startswith(("pulpcore==", "pulp-container==", "pulp_container=="))
        ]
        return ", ".join(keep) or "?"

    def env(self) -> dict[str, str]:
        env = clean_env(
            PULP_SETTINGS=str(self.workdir / "settings.py"),
            DJANGO_SETTINGS_MODULE="pulpcore.app.settings",
        )
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
        return env

    def manager(self, *args: str, timeout: float = 1200) -> None:
        procs.run([self.bin("pulpcore-manager"), *args], env=self.env(), timeout=timeout)

    def prepare(self) -> None:
        super().prepare()
        self.pg = Postgres(self.workdir / "postgres").start()
        self.redis = Redis(self.workdir / "redis").start()
        assert self.pg.proc is not None and self.redis.proc is not None
        self.dep_roots = [self.pg.proc.pid, self.redis.proc.pid]
        self.pg.create_database("pulp", "pulp", "pulp")
        self.port = procs.free_port()
        self.content_port = procs.free_port()
        for d in ("media", "tmp", "static"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        keyfile = self.workdir / "database_fields.symmetric.key"
        if not keyfile.exists():
            keyfile.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        wd = self.workdir
        if not (wd / "token-private.pem").exists():
            procs.run(
                ["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout",
                 "-out", wd / "token-private.pem"],
            )  # fmt: skip
            procs.run(
                ["openssl", "ec", "-in", wd / "token-private.pem", "-pubout",
                 "-out", wd / "token-public.pem"],
            )  # fmt: skip
        settings = f"""
SECRET_KEY = {secrets.token_urlsafe(40)!r}
CONTENT_ORIGIN = "http://127.0.0.1:{self.content_port}"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": "pulp",
    "USER": "pulp", "PASSWORD": "pulp", "HOST": "127.0.0.1", "PORT": "{self.pg.port}"}}}}
REDIS_URL = "{self.redis.url}"
CACHE_ENABLED = True
MEDIA_ROOT = "{wd / "media"}"
STATIC_ROOT = "{wd / "static"}"
WORKING_DIRECTORY = "{wd / "tmp"}"
FILE_UPLOAD_TEMP_DIR = "{wd / "tmp"}"
DB_ENCRYPTION_KEY = "{keyfile}"
TOKEN_AUTH_DISABLED = False
TOKEN_SERVER = "http://127.0.0.1:{self.port}/token/"
TOKEN_SIGNATURE_ALGORITHM = "ES256"
PUBLIC_KEY_PATH = "{wd / "token-public.pem"}"
PRIVATE_KEY_PATH = "{wd / "token-private.pem"}"
ANALYTICS = False
ALLOWED_CONTENT_CHECKSUMS = ["sha224", "sha256", "sha384", "sha512"]
"""
        (wd / "settings.py").write_text(settings)
        self.ctx.log("pulp: migrating its database (not part of the start time)")
        self.manager("migrate", "--noinput")
        self.manager("reset-admin-password", "--password", self.password)

    def launch(self) -> None:
        env = self.env()
        self.spawn(
            "pulpcore-api",
            [
                self.bin("pulpcore-api"), "--bind", self.host,
                "--workers", str(API_WORKERS), "--timeout", "600",
            ],
            env=env,
        )  # fmt: skip
        self.spawn(
            "pulpcore-content",
            [
                self.bin("pulpcore-content"), "--bind", f"127.0.0.1:{self.content_port}",
                "--workers", str(CONTENT_WORKERS), "--timeout", "600",
            ],
            env=env,
        )  # fmt: skip
        self.spawn("pulpcore-worker", [self.bin("pulpcore-worker")], env=env)

    def teardown(self) -> None:
        super().teardown()
        for svc in (getattr(self, "redis", None), getattr(self, "pg", None)):
            if svc is not None:
                svc.stop()

    def data_paths(self) -> list[Path]:
        pg = getattr(self, "pg", None)
        return [self.workdir / "media", self.workdir / "tmp"] + ([pg.data] if pg else [])
