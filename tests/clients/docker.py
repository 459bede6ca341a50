"""A private dockerd and the docker CLI; images built FROM scratch."""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.clients.base import (
    _DIGEST_RE,
    DEFAULT_TIMEOUT,
    ClientError,
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

_DOCKERD_BASE_FLAGS = (
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    "--storage-driver=vfs",
)


class DockerDaemon:
    """A private ``dockerd`` (plus the containerd it spawns) for one test session.

    dockerd only works on this machine as
    ``dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs``;
    containers, if any, must be run with ``--network host``.  Loopback
    registries (127.0.0.0/8) are insecure by default, so plain-HTTP push/pull to
    127.0.0.1:PORT needs no configuration; other hosts can be passed as
    ``insecure_registries``.

    Note: if ``/run/containerd/containerd.sock`` exists (a system containerd is
    running), dockerd 20.10 uses that containerd instead of spawning its own.
    That only matters for running containers, not for build/push/pull.
    """

    def __init__(
        self,
        *,
        dockerd: str = "dockerd",
        docker: str = "docker",
        insecure_registries: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        cmd_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.dockerd_bin = dockerd
        self.docker_bin = docker
        self.insecure_registries = list(insecure_registries)
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.cmd_timeout = cmd_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir: Path | None = None
        self.data_root: Path | None = None
        self.config_dir: Path | None = None
        self.log_path: Path | None = None
        self.sock_dir: Path | None = None
        self.exec_root: Path | None = None
        self.sock: Path | None = None
        self._logfh: io.BufferedWriter | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self, tmpdir: str | os.PathLike[str]) -> DockerDaemon:
        starting_a_server("dockerd")
        if self.proc is not None:
            raise RuntimeError("DockerDaemon already started")
        self.tmpdir = Path(tmpdir).resolve()
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.data_root = self.tmpdir / "docker-data"
        self.config_dir = self.tmpdir / "docker-config"
        self.config_dir.mkdir(exist_ok=True)
        (self.config_dir / "config.json").write_text("{}\n")
        self.log_path = self.tmpdir / "dockerd.log"
        self.sock_dir = _short_dir("berth-dockerd-")
        self.exec_root = self.sock_dir / "x"
        self.sock = self.sock_dir / "docker.sock"
        cmd = [
            self.dockerd_bin,
            *_DOCKERD_BASE_FLAGS,
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.sock_dir / 'docker.pid'}",
            f"--host=unix://{self.sock}",
            # do not pick up /etc/docker/daemon.json
            f"--config-file={self.tmpdir / 'daemon.json'}",
            *(f"--insecure-registry={r}" for r in self.insecure_registries),
            *self.extra_args,
        ]
        (self.tmpdir / "daemon.json").write_text("{}\n")
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
            r = run_cmd(
                [self.docker_bin, "info", "--format", "{{.ServerVersion}}"],
                env=self.env(),
                timeout=20,
                check=False,
            )
            return r.returncode == 0

        try:
            _wait_for(
                ready,
                timeout=self.startup_timeout,
                proc=self.proc,
                what="dockerd",
                log=self.log_path,
                cmd=cmd,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0, remove_data: bool = True) -> None:
        """Terminate dockerd, wait, kill stray containerd/shims, unmount, clean up."""
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        _stop_popen(self.proc, timeout)
        needles = [str(self.exec_root), str(self.data_root), str(self.sock_dir)]
        _kill_pids(_pids_referencing(needles))
        assert self.exec_root is not None and self.data_root is not None
        _unmount_under(self.exec_root, self.data_root)
        if self._logfh is not None:
            self._logfh.close()
            self._logfh = None
        self.proc = None
        if self.sock_dir is not None:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
        if remove_data and self.data_root is not None:
            shutil.rmtree(self.data_root, ignore_errors=True)

    def __enter__(self) -> DockerDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- CLI ---------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = _clean_env(
            {
                "DOCKER_HOST": self.host,
                "DOCKER_CONFIG": str(self.config_dir),
                # The docker.io 20.10 daemon has no buildx here: use the legacy
                # builder explicitly (otherwise CLI 23+ prints a fallback notice).
                "DOCKER_BUILDKIT": "0",
                "DOCKER_CLI_HINTS": "false",
            }
        )
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        *args: str | os.PathLike[str],
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``docker ARGS`` against this daemon with a private config dir."""
        if self.proc is None:
            raise RuntimeError("DockerDaemon not started")
        return run_cmd(
            [self.docker_bin, *args],
            env=self.env(env),
            timeout=timeout or self.cmd_timeout,
            check=check,
            input=input,
            cwd=cwd,
        )

    def login(self, registry: str, username: str, password: str) -> None:
        self.run("login", "--username", username, "--password-stdin", registry, input=password)

    def logout(self, registry: str) -> None:
        self.run("logout", registry, check=False)

    def push(self, ref: str, timeout: float | None = None) -> str:
        """``docker push REF``; returns the manifest digest reported by docker."""
        r = self.run("push", ref, timeout=timeout)
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", r.stdout)
        if not m:
            raise ClientError(r.args, 0, r.stdout, r.stderr, "no digest in docker push output")
        return m.group(1)

    def pull(self, ref: str, timeout: float | None = None) -> str:
        """``docker pull REF``; returns the local image id (config digest)."""
        self.run("pull", ref, timeout=timeout)
        return self.image_id(ref)

    def rmi(self, *refs: str, force: bool = False) -> None:
        self.run("rmi", *(["--force"] if force else []), *refs)

    def tag(self, src: str, dst: str) -> None:
        self.run("tag", src, dst)

    def image_id(self, ref: str) -> str:
        return str(self.run("image", "inspect", "--format", "{{.Id}}", ref).stdout).strip()

    def repo_digests(self, ref: str) -> list[str]:
        out = self.run("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
        return list(json.loads(out) or [])

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0


def build_scratch_image(
    daemon: DockerDaemon,
    tag: str,
    workdir: str | os.PathLike[str],
    layers: int = 3,
    *,
    layer_size: int = 300 * 1024,
    labels: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Build a ``FROM scratch`` image with ``layers`` COPY layers and tag it.

    Each layer adds one distinct file of ``layer_size`` random bytes (so
    every build yields new, incompressible layer blobs).  Uses the legacy
    builder (``DOCKER_BUILDKIT=0``; the Debian daemon has no buildx).
    Returns the image id (``sha256:...`` of the config).
    """
    if layers < 1:
        raise ValueError("layers must be >= 1")
    ctx = Path(tempfile.mkdtemp(prefix="ctx-", dir=_mkdir(workdir)))
    lines = ["FROM scratch"]
    for i in range(layers):
        name = f"layer{i}.bin"
        (ctx / name).write_bytes(os.urandom(layer_size))
        lines.append(f"COPY {name} /{name}")
    for key, value in (labels or {}).items():
        lines.append(f"LABEL {json.dumps(key)}={json.dumps(value)}")
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    iidfile = ctx.parent / (ctx.name + ".iid")
    daemon.run(
        "build",
        "--quiet",
        "--tag",
        tag,
        "--iidfile",
        iidfile,
        ctx,
        timeout=timeout,
    )
    image_id = iidfile.read_text().strip()
    shutil.rmtree(ctx, ignore_errors=True)
    iidfile.unlink(missing_ok=True)
    if not _DIGEST_RE.fullmatch(image_id):
        raise ClientError(["docker", "build"], 0, message=f"unexpected image id {image_id!r}")
    return image_id
