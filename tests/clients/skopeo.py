"""skopeo with a private blob-info cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.clients.base import (
    DEFAULT_TIMEOUT,
    _cache_wrapper,
    _can_isolate_blob_cache,
    _clean_env,
    _mkdir,
    run_cmd,
)


class Skopeo:
    """skopeo with a private auth file and (optionally) a private blob-info cache.

    ``copy('docker://127.0.0.1:5000/r:t', 'oci:/dir:t')`` etc.  TLS
    verification is off by default (the registries under test speak plain
    HTTP on loopback; see the module notes on the HTTPS probe).
    """

    def __init__(
        self,
        tmpdir: str | os.PathLike[str] | None = None,
        *,
        skopeo: str = "skopeo",
        isolate_blob_cache: bool = True,
        cmd_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.skopeo_bin = skopeo
        self.cmd_timeout = cmd_timeout
        self._own_tmp = tmpdir is None
        self.base = _mkdir(
            Path(tmpdir).resolve() if tmpdir else Path(tempfile.mkdtemp(prefix="berth-skopeo-"))
        )
        self.cache_dir = _mkdir(self.base / "blob-cache")
        self.image_tmp = _mkdir(self.base / "tmp")
        self.authfile = self.base / "auth.json"
        if not self.authfile.exists():
            self.authfile.write_text('{"auths": {}}\n')
        self.registries_conf = self.base / "registries.conf"
        self.registries_conf.write_text(
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
        )
        self.isolate_blob_cache = isolate_blob_cache and _can_isolate_blob_cache()

    def run(
        self,
        *args: str | os.PathLike[str],
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        argv: list[str | os.PathLike[str]] = [
            self.skopeo_bin,
            "--insecure-policy",
            "--registries-conf",
            str(self.registries_conf),
            *args,
        ]
        if self.isolate_blob_cache:
            argv = [*_cache_wrapper(self.cache_dir), *argv]
        return run_cmd(
            argv,
            env=_clean_env(
                {"TMPDIR": str(self.image_tmp), "REGISTRY_AUTH_FILE": str(self.authfile)}
            ),
            timeout=timeout or self.cmd_timeout,
            check=check,
            input=input,
            text=text,
        )

    def login(self, registry: str, username: str, password: str, tls_verify: bool = False) -> None:
        self.run(
            "login",
            f"--tls-verify={str(tls_verify).lower()}",
            "--authfile",
            str(self.authfile),
            "--username",
            username,
            "--password-stdin",
            registry,
            input=password,
        )

    def copy(
        self,
        src: str,
        dest: str,
        *,
        all: bool = True,
        preserve_digests: bool = False,
        src_tls_verify: bool = False,
        dest_tls_verify: bool = False,
        src_creds: str | None = None,
        dest_creds: str | None = None,
        fmt: str | None = None,
        extra: Sequence[str] = (),
        timeout: float | None = None,
    ) -> str:
        """``skopeo copy [--all] SRC DEST``; returns the digest of what was written.

        ``src``/``dest`` are full transport refs (``docker://``, ``oci:DIR:tag``).
        """
        digestfile = self.image_tmp / f"copy-{os.urandom(6).hex()}.digest"
        args = [
            "copy",
            "--retry-times",
            "0",
            f"--src-tls-verify={str(src_tls_verify).lower()}",
            f"--dest-tls-verify={str(dest_tls_verify).lower()}",
            "--digestfile",
            str(digestfile),
        ]
        if all:
            args.append("--all")
        if preserve_digests:
            args.append("--preserve-digests")
        if src_creds:
            args += ["--src-creds", src_creds]
        if dest_creds:
            args += ["--dest-creds", dest_creds]
        if fmt:
            args += ["--format", fmt]
        self.run(*args, *extra, src, dest, timeout=timeout)
        digest = digestfile.read_text().strip()
        digestfile.unlink(missing_ok=True)
        return digest

    def inspect_raw(
        self,
        ref: str,
        *,
        tls_verify: bool = False,
        creds: str | None = None,
        config: bool = False,
        timeout: float | None = None,
    ) -> bytes:
        """``skopeo inspect --raw REF``: the exact manifest (or config) bytes."""
        args = ["inspect", "--raw", f"--tls-verify={str(tls_verify).lower()}"]
        if config:
            args.append("--config")
        if creds:
            args += ["--creds", creds]
        return bytes(self.run(*args, ref, timeout=timeout, text=False).stdout)

    def inspect(
        self, ref: str, *, tls_verify: bool = False, creds: str | None = None
    ) -> dict[str, Any]:
        args = ["inspect", f"--tls-verify={str(tls_verify).lower()}"]
        if creds:
            args += ["--creds", creds]
        result: dict[str, Any] = json.loads(self.run(*args, ref).stdout)
        return result

    def list_tags(
        self, repo_ref: str, *, tls_verify: bool = False, creds: str | None = None
    ) -> list[str]:
        """``skopeo list-tags docker://HOST/REPO``."""
        args = ["list-tags", f"--tls-verify={str(tls_verify).lower()}"]
        if creds:
            args += ["--creds", creds]
        return list(json.loads(self.run(*args, repo_ref).stdout)["Tags"])

    def delete(self, ref: str, *, tls_verify: bool = False, creds: str | None = None) -> None:
        args = ["delete", f"--tls-verify={str(tls_verify).lower()}"]
        if creds:
            args += ["--creds", creds]
        self.run(*args, ref)

    def stop(self) -> None:
        if self._own_tmp:
            shutil.rmtree(self.base, ignore_errors=True)
