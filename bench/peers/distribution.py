"""CNCF Distribution: 2.8 from Debian (``docker-registry``) and v3 built from the Go proxy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench import procs
from bench.context import BIN_DIR
from bench.peers.base import Peer, Unavailable, apt_install, clean_env, deb_version

DIST_V3_MODULE = "github.com/distribution/distribution/v3"
DIST_V3_VERSION = "v3.0.0"


def go_env(**extra: str) -> dict[str, str]:
    env = clean_env(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-trimpath -buildvcs=false",
    )
    env["PATH"] = "/usr/local/go/bin:" + env.get("PATH", "/usr/bin:/bin")
    env.update(extra)
    return env


def go_install(  # type: ignore[no-untyped-def]
    ctx, module_pkg: str, version: str, binary: str, out_name: str, tags: str = ""
) -> Path:
    """``go install pkg@version`` into bench/tmp/bin as ``out_name`` (stamped, idempotent)."""
    target = BIN_DIR / out_name
    stamp = BIN_DIR / f".{out_name}.stamp"
    want = f"{module_pkg}@{version}"
    if target.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return target
    if not shutil.which("go", path=go_env()["PATH"]):
        raise Unavailable("no Go toolchain on this machine")
    if not ctx.allow_install:
        raise Unavailable(f"{out_name} not built (--no-install given)")
    gobin = BIN_DIR / f".gobin-{out_name}"
    gobin.mkdir(parents=True, exist_ok=True)
    ctx.log(f"building {want} (Go module proxy)")
    argv = ["go", "install", *(["-tags", tags] if tags else []), want]
    r = procs.run(argv, env=go_env(GOBIN=str(gobin)), check=False, timeout=1800)
    if r.returncode != 0:
        raise Unavailable(f"`go install {want}` failed: {(r.stderr or r.stdout).strip()[-600:]}")
    os.replace(gobin / binary, target)
    stamp.write_text(want + "\n")
    return target


class Distribution28(Peer):
    name = "distribution-2.8"
    title = "CNCF Distribution 2.8 (Debian docker-registry)"
    binary = "docker-registry"
    settings_note = (
        "filesystem storage, in-memory blob descriptor cache, catalog maxentries 1000, "
        "log level warn, access log off"
    )

    def install(self) -> None:
        if not shutil.which(self.binary):
            apt_install(self.ctx, "docker-registry")

    def version(self) -> str:
        return f"docker-registry {deb_version('docker-registry')}"

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def data_paths(self) -> list[Path]:
        return [self.storage]

    def prepare(self) -> None:
        super().prepare()
        self.storage.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()
        config = f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.storage}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{self.port}
  secret: berth-bench-secret
catalog:
  maxentries: 1000
"""
        (self.workdir / "config.yml").write_text(config)

    def launch(self) -> None:
        self.spawn("registry", [self.binary, "serve", self.workdir / "config.yml"], env=clean_env())


class Distribution3(Distribution28):
    name = "distribution-v3"
    title = f"CNCF Distribution {DIST_V3_VERSION} (built from the Go module proxy)"

    def install(self) -> None:
        self.binary = str(
            go_install(
                self.ctx,
                f"{DIST_V3_MODULE}/cmd/registry",
                DIST_V3_VERSION,
                "registry",
                "distribution-v3",
            )
        )

    def version(self) -> str:
        return f"{DIST_V3_MODULE} {DIST_V3_VERSION}"
