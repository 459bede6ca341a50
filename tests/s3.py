"""A real S3 server for the tests: MinIO, built from its Go module by
tests/peers/build-go-peers.sh (no mock counts as S3 here).

``shared_minio()`` starts one ``minio server`` per test process on a free loopback
port, with generated credentials and a temporary data directory, and stops it
when the process exits. ``s3_store()`` gives a store on a bucket of its own.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.conftest import REPO_ROOT
from tests.support import free_port, starting_a_server

PEERS = Path(os.environ.get("BERTH_PEERS_BIN", REPO_ROOT / ".peers" / "bin"))


def minio_binary() -> str:
    path = os.environ.get("BERTH_MINIO") or str(PEERS / "minio")
    if not os.path.isfile(path):
        path = shutil.which("minio") or path
    assert os.path.isfile(path), f"{path} missing: run tests/peers/build-go-peers.sh"
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class MinioServer:
    region = "us-east-1"

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key = "berth-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.data_dir = tempfile.mkdtemp(prefix="berth-minio-")
        self.log_path = Path(self.data_dir + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def credentials_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def start(self, timeout: float = 60) -> MinioServer:
        starting_a_server("MinIO")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.data_dir,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CI_CD": "1",  # a data directory on the root disk is fine here
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        address = f"127.0.0.1:{self.port}"
        data = os.path.join(self.data_dir, "data")
        self.proc = subprocess.Popen(
            [minio_binary(), "server", "--quiet", "--address", address, data],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # it must not outlive a killed test run
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"minio exited: {self.log_path.read_text()[-3000:]}")
            try:
                r = requests.get(f"{self.endpoint}/minio/health/ready", timeout=1)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"minio did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def store_options(self, bucket: str, **extra: object) -> dict[str, object]:
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "addressing_style": "path",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            **extra,
        }


_shared: MinioServer | None = None


def shared_minio() -> MinioServer:
    """One MinIO per test process, started on first use."""
    global _shared
    if _shared is None:
        _shared = MinioServer().start()
        atexit.register(_shared.stop)
    return _shared


def new_bucket_name() -> str:
    return "berth-" + secrets.token_hex(6)


def s3_store(**extra: object):
    """A store on a fresh bucket (created by the store) of the shared MinIO."""
    from registry.storage.s3 import S3BlobStore

    server = shared_minio()
    options = {"location": "registry", **extra}
    return S3BlobStore(**server.store_options(new_bucket_name(), **options))
