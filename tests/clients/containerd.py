"""A private containerd driven with ctr."""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.clients.base import (
    _DIGEST_RE,
    DEFAULT_TIMEOUT,
    ClientError,
    PulledImage,
    _clean_env,
    _kill_pids,
    _mkdir,
    _pids_referencing,
    _short_dir,
    _stop_popen,
    _unmount_under,
    _wait_for,
    run_cmd,
)
from tests.support import starting_a_server


class ContainerdDaemon:
    """A private containerd (1.6) on its own socket/root, driven with ``ctr``.

    The config disables the CRI plugin and the snapshotters that only log
    errors here; the default snapshotter is ``native`` (no mounts needed).
    """

    def __init__(
        self,
        *,
        containerd: str = "containerd",
        ctr: str = "ctr",
        namespace: str = "berth",
        snapshotter: str = "native",
        startup_timeout: float = 30.0,
        cmd_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.containerd_bin = containerd
        self.ctr_bin = ctr
        self.namespace = namespace
        self.snapshotter = snapshotter
        self.startup_timeout = startup_timeout
        self.cmd_timeout = cmd_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.base: Path | None = None
        self.root: Path | None = None
        self.sock_dir: Path | None = None
        self.sock: Path | None = None
        self.log_path: Path | None = None
        self._logfh: io.BufferedWriter | None = None

    def start(self, tmpdir: str | os.PathLike[str]) -> ContainerdDaemon:
        starting_a_server("containerd")
        if self.proc is not None:
            raise RuntimeError("ContainerdDaemon already started")
        self.base = _mkdir(Path(tmpdir).resolve())
        self.root = self.base / "root"
        self.sock_dir = _short_dir("berth-ctrd-")
        self.sock = self.sock_dir / "containerd.sock"
        self.log_path = self.base / "containerd.log"
        config = self.base / "config.toml"
        config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.root}"',
                    f'state = "{self.sock_dir / "state"}"',
                    "disabled_plugins = ["
                    '"io.containerd.grpc.v1.cri", '
                    '"io.containerd.snapshotter.v1.aufs", '
                    '"io.containerd.snapshotter.v1.btrfs", '
                    '"io.containerd.snapshotter.v1.devmapper", '
                    '"io.containerd.snapshotter.v1.zfs", '
                    '"io.containerd.tracing.processor.v1.otlp", '
                    '"io.containerd.internal.v1.tracing"'
                    "]",
                    "[grpc]",
                    f'  address = "{self.sock}"',
                    "[ttrpc]",
                    f'  address = "{self.sock}.ttrpc"',
                    "[debug]",
                    '  address = ""',
                    '  level = "info"',
                    "[metrics]",
                    '  address = ""',
                    "",
                ]
            )
        )
        cmd = [self.containerd_bin, "--config", str(config)]
        self._logfh = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the daemon)
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
            return self.ctr("version", check=False, timeout=10).returncode == 0

        try:
            _wait_for(
                ready,
                timeout=self.startup_timeout,
                proc=self.proc,
                what="containerd",
                log=self.log_path,
                cmd=cmd,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0, remove_data: bool = True) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        _stop_popen(self.proc, timeout)
        assert self.sock_dir is not None and self.root is not None
        _kill_pids(_pids_referencing([str(self.sock_dir), str(self.root)]))
        _unmount_under(self.sock_dir, self.root)
        if self._logfh is not None:
            self._logfh.close()
            self._logfh = None
        self.proc = None
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        if remove_data:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ContainerdDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ctr(
        self,
        *args: str | os.PathLike[str],
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``ctr -a SOCK -n NAMESPACE ARGS``."""
        if self.sock is None:
            raise RuntimeError("ContainerdDaemon not started")
        return run_cmd(
            [self.ctr_bin, "--address", str(self.sock), "--namespace", self.namespace, *args],
            timeout=timeout or self.cmd_timeout,
            check=check,
            env=_clean_env(),
        )

    run = ctr

    def pull(
        self,
        ref: str,
        *,
        plain_http: bool = True,
        platform: str | None = None,
        all_platforms: bool = False,
        user: str | None = None,
        timeout: float | None = None,
    ) -> PulledImage:
        """``ctr images pull --plain-http REF``; returns digest and host-platform config id."""
        args = ["images", "pull", "--snapshotter", self.snapshotter]
        if plain_http:
            args.append("--plain-http")
        if platform:
            args += ["--platform", platform]
        if all_platforms:
            args.append("--all-platforms")
        if user:
            args += ["--user", user]
        self.ctr(*args, ref, timeout=timeout)
        digest = self.image_digest(ref)
        return PulledImage(ref, self._config_digest(digest, platform), digest)

    def push(
        self,
        ref: str,
        local: str | None = None,
        *,
        plain_http: bool = True,
        user: str | None = None,
        timeout: float | None = None,
    ) -> None:
        args = ["images", "push"]
        if plain_http:
            args.append("--plain-http")
        if user:
            args += ["--user", user]
        self.ctr(*args, ref, *([local] if local else []), timeout=timeout)

    def images(self) -> dict[str, str]:
        """Local image name -> target digest."""
        out = self.ctr("images", "ls").stdout.splitlines()
        result: dict[str, str] = {}
        for line in out[1:]:
            cols = line.split()
            if len(cols) >= 3 and _DIGEST_RE.fullmatch(cols[2]):
                result[cols[0]] = cols[2]
        return result

    def image_digest(self, ref: str) -> str:
        images = self.images()
        if ref not in images:
            raise ClientError(["ctr", "images", "ls"], 0, message=f"{ref} not in ctr images")
        return images[ref]

    def content(self, digest: str) -> bytes:
        r = run_cmd(
            [
                self.ctr_bin,
                "--address",
                str(self.sock),
                "--namespace",
                self.namespace,
                "content",
                "get",
                digest,
            ],
            timeout=self.cmd_timeout,
            env=_clean_env(),
            text=False,
        )
        return bytes(r.stdout)

    def _config_digest(self, digest: str, platform: str | None) -> str | None:
        want_os, want_arch = (platform or "linux/amd64").split("/")[:2]
        try:
            doc = json.loads(self.content(digest))
            if "manifests" in doc:
                for desc in doc["manifests"]:
                    p = desc.get("platform") or {}
                    if p.get("os") == want_os and p.get("architecture") == want_arch:
                        doc = json.loads(self.content(desc["digest"]))
                        break
                else:
                    return None
            return str(doc["config"]["digest"])
        except (ClientError, KeyError, ValueError):
            return None

    def rmi(self, *refs: str) -> None:
        self.ctr("images", "rm", "--sync", *refs)
