"""Rootful podman with private storage, runroot, tmpdir and config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.clients.base import (
    DEFAULT_TIMEOUT,
    ClientError,
    PulledImage,
    _cache_wrapper,
    _can_isolate_blob_cache,
    _clean_env,
    _kill_pids,
    _mkdir,
    _pids_referencing,
    _short_dir,
    _unmount_under,
    run_cmd,
)


class Podman:
    """Rootful podman with private storage (vfs), runroot, tmpdir and config.

    No daemon: each call is a separate ``podman`` process.  ``stop()`` only
    removes the private directories (nothing keeps running after a pull/push).
    """

    def __init__(
        self,
        tmpdir: str | os.PathLike[str],
        *,
        podman: str = "podman",
        storage_driver: str = "vfs",
        isolate_blob_cache: bool = True,
        cmd_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.podman_bin = podman
        self.cmd_timeout = cmd_timeout
        self.base = _mkdir(Path(tmpdir).resolve())
        self.root = _mkdir(self.base / "root")
        # podman refuses a runroot path longer than 50 characters.
        self.runroot = _short_dir("berth-podman-")
        self.libpod_tmp = _mkdir(self.base / "libpod-tmp")
        self.image_tmp = _mkdir(self.base / "image-tmp")
        self.netdir = _mkdir(self.base / "networks")
        self.cache_dir = _mkdir(self.base / "blob-cache")
        self.authfile = self.base / "auth.json"
        self.authfile.write_text('{"auths": {}}\n')
        self.registries_conf = self.base / "registries.conf"
        self.registries_conf.write_text(
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
        )
        self.storage_driver = storage_driver
        self.isolate_blob_cache = isolate_blob_cache and _can_isolate_blob_cache()

    def global_args(self) -> list[str]:
        return [
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            self.storage_driver,
            "--tmpdir",
            str(self.libpod_tmp),
            "--network-config-dir",
            str(self.netdir),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def env(self) -> dict[str, str]:
        return _clean_env(
            {
                "TMPDIR": str(self.image_tmp),
                "REGISTRY_AUTH_FILE": str(self.authfile),
                "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            }
        )

    def run(
        self,
        *args: str | os.PathLike[str],
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[Any]:
        argv: list[str | os.PathLike[str]] = [self.podman_bin, *self.global_args(), *args]
        if self.isolate_blob_cache:
            argv = [*_cache_wrapper(self.cache_dir), *argv]
        return run_cmd(
            argv,
            env=self.env(),
            timeout=timeout or self.cmd_timeout,
            check=check,
            input=input,
        )

    def login(self, registry: str, username: str, password: str, tls_verify: bool = False) -> None:
        self.run(
            "login",
            f"--tls-verify={str(tls_verify).lower()}",
            "--username",
            username,
            "--password-stdin",
            registry,
            input=password,
        )

    def pull(
        self,
        ref: str,
        *,
        tls_verify: bool = False,
        platform: str | None = None,
        all_tags: bool = False,
        creds: str | None = None,
        timeout: float | None = None,
    ) -> PulledImage:
        """``podman pull --tls-verify=false REF``; returns image id and manifest digest."""
        args = ["pull", "--quiet", f"--tls-verify={str(tls_verify).lower()}"]
        if platform:
            args += ["--platform", platform]
        if creds:
            args += ["--creds", creds]
        if all_tags:
            args.append("--all-tags")
        r = self.run(*args, ref, timeout=timeout)
        ids = r.stdout.split()
        if not ids:
            raise ClientError(r.args, 0, r.stdout, r.stderr, "podman pull printed no image id")
        image_id = "sha256:" + ids[-1] if not ids[-1].startswith("sha256:") else ids[-1]
        return PulledImage(ref, image_id, self.image_digest(ref))

    def push(
        self,
        image: str,
        dest: str | None = None,
        *,
        tls_verify: bool = False,
        fmt: str | None = None,
        creds: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """``podman push IMAGE [DEST]``; returns the pushed manifest digest."""
        digestfile = self.image_tmp / f"push-{os.urandom(6).hex()}.digest"
        args = ["push", "--quiet", f"--tls-verify={str(tls_verify).lower()}"]
        args += ["--digestfile", str(digestfile)]
        if fmt:
            args += ["--format", fmt]  # oci | v2s2
        if creds:
            args += ["--creds", creds]
        self.run(*args, image, *([dest] if dest else []), timeout=timeout)
        digest = digestfile.read_text().strip()
        digestfile.unlink(missing_ok=True)
        return digest

    def image_id(self, ref: str) -> str:
        out = str(self.run("image", "inspect", "--format", "{{.Id}}", ref).stdout).strip()
        return out if out.startswith("sha256:") else "sha256:" + out

    def image_digest(self, ref: str) -> str:
        return str(self.run("image", "inspect", "--format", "{{.Digest}}", ref).stdout).strip()

    def rmi(self, *refs: str, force: bool = False) -> None:
        self.run("rmi", *(["--force"] if force else []), *refs)

    def stop(self) -> None:
        """Remove the private storage (podman leaves no processes after pull/push)."""
        _kill_pids(_pids_referencing([str(self.base), str(self.runroot)]))
        _unmount_under(self.base, self.runroot)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
