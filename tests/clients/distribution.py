"""CNCF Distribution (docker-registry) as a reference registry."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.clients.base import (
    _clean_env,
    _mkdir,
    _stop_popen,
    _wait_for,
)
from tests.support import free_port, starting_a_server


class DistributionRegistry:
    """``docker-registry serve`` on 127.0.0.1:PORT with filesystem storage.

    Reference implementation for differential tests; ``host`` is
    ``127.0.0.1:PORT`` (use in image refs), ``url`` is ``http://host``.
    ``htpasswd`` is the path to a bcrypt htpasswd file to enable basic auth.
    """

    def __init__(
        self,
        *,
        binary: str = "docker-registry",
        port: int | None = None,
        delete_enabled: bool = True,
        htpasswd: str | os.PathLike[str] | None = None,
        token: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = binary
        self.port = port
        self.delete_enabled = delete_enabled
        self.htpasswd = htpasswd
        # Token auth: {"realm", "service", "issuer", "rootcertbundle"}.
        self.token = token
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.base: Path | None = None
        self.log_path: Path | None = None
        self._logfh: io.BufferedWriter | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self, tmpdir: str | os.PathLike[str]) -> DistributionRegistry:
        starting_a_server("Distribution")
        self.base = _mkdir(Path(tmpdir).resolve())
        if self.port is None:
            self.port = free_port()
        storage = _mkdir(self.base / "storage")
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {storage}",
            "  delete:",
            f"    enabled: {'true' if self.delete_enabled else 'false'}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: berth-test-secret",
        ]
        if self.htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: berth-test", f"    path: {self.htpasswd}"]
        elif self.token:
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in self.token.items()]
        config = self.base / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        self.log_path = self.base / "registry.log"
        self._logfh = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the daemon)
        cmd = [self.binary, "serve", str(config)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._logfh,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            start_new_session=True,
        )
        atexit.register(self.stop)

        def ready() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=2) as resp:
                    return bool(resp.status == 200)
            except urllib.error.HTTPError as exc:
                return exc.code == 401
            except OSError:
                return False

        try:
            _wait_for(
                ready,
                timeout=self.startup_timeout,
                proc=self.proc,
                what="docker-registry",
                log=self.log_path,
                cmd=cmd,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        _stop_popen(self.proc, timeout)
        self.proc = None
        if self._logfh is not None:
            self._logfh.close()
            self._logfh = None

    def __enter__(self) -> DistributionRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
