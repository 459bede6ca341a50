"""Drive real container clients against an OCI registry listening on loopback.

Test-support module (not a test file).  Everything here shells out to the real
tools that Debian 12 packages:

* ``dockerd`` (package ``docker.io``, 20.10) with the ``docker`` CLI,
* ``podman`` (4.3), ``skopeo`` (1.9), ``containerd``/``ctr`` (1.6),
* ``docker-registry`` (CNCF Distribution 2.8) as a reference registry.

Every daemon is started on private sockets / roots under a caller-supplied
temporary directory (plus a short directory in /tmp for unix sockets, whose
paths are limited to 107 bytes), so nothing touches the machine's global
container state and nothing collides with other test runs.  Every command has a
timeout; on failure a :class:`ClientError` carrying the tool's stderr is
raised; ``stop()`` methods terminate the daemon, wait for it, and kill any
stray processes (containerd, shims) that still reference the private paths.

Nothing is ever pulled from the internet: images are built ``FROM scratch``
from random local files, and multi-arch indexes are written as an OCI image
layout by hand (:func:`write_oci_layout`) and pushed with skopeo.

Typical use (pytest)::

    reg = "127.0.0.1:%d" % port            # the registry under test
    with DockerDaemon().start(tmp_path / "docker") as dockerd:
        image_id = build_scratch_image(dockerd, f"{reg}/t/app:1", tmp_path / "build")
        digest = dockerd.push(f"{reg}/t/app:1")
        dockerd.rmi(f"{reg}/t/app:1")
        assert dockerd.pull(f"{reg}/t/app:1") == image_id

How the clients reach a plain-HTTP registry on loopback (measured with
Distribution 2.8 behind a TCP proxy that classified connections):

* skopeo / podman with ``--tls-verify=false`` and dockerd (127.0.0.0/8 is
  insecure by default) always open ONE TLS connection first (``GET https://
  HOST/v2/``), per process invocation / per docker pull or push, then fall
  back to ``http://``.  Fallback happens whatever the plain-HTTP server does
  with the ClientHello: an HTTP 400 answer (Distribution, gunicorn, granian,
  nginx all do that at once), FIN or RST -> no measurable delay.  A server
  that reads the ClientHello and says nothing costs 10 s per invocation (Go's
  TLS handshake timeout), then the operation still succeeds over HTTP.
* With TLS verification on (the podman/skopeo default) there is no fallback:
  "http: server gave HTTP response to HTTPS client".
* ``ctr --plain-http`` goes straight to HTTP (no TLS attempt, no ``/v2/`` ping:
  its first request is ``HEAD /v2/<name>/manifests/<ref>``).
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import free_port

__all__ = [
    "ClientError",
    "ClientTimeout",
    "ContainerdDaemon",
    "DistributionRegistry",
    "DockerDaemon",
    "OciImage",
    "OciLayout",
    "Podman",
    "PulledImage",
    "Skopeo",
    "build_scratch_image",
    "push_multiarch_index",
    "read_oci_layout",
    "run_cmd",
    "sha256_digest",
    "tool_available",
    "write_oci_layout",
]

DEFAULT_TIMEOUT = 300.0

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


# --------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------


class ClientError(RuntimeError):
    """A client command failed (non-zero exit, or a daemon did not come up)."""

    def __init__(
        self,
        cmd: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        message: str | None = None,
    ) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        head = message or f"command exited with status {returncode}"
        text = f"{head}: {' '.join(self.cmd)}"
        if stderr.strip():
            text += f"\n--- stderr ---\n{stderr.strip()[-8000:]}"
        if stdout.strip():
            text += f"\n--- stdout ---\n{stdout.strip()[-4000:]}"
        super().__init__(text)


class ClientTimeout(ClientError):
    """A client command ran longer than its timeout (its process group was killed)."""


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # Never let the caller's docker/containers configuration leak in.
    for key in (
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONFIG",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINERD_ADDRESS",
        "CONTAINERD_NAMESPACE",
        "REGISTRY_AUTH_FILE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    if extra:
        env.update(extra)
    return env


def run_cmd(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    check: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess[Any]:
    """Run ``cmd`` in its own process group with a timeout.

    On timeout the whole process group is SIGKILLed and :class:`ClientTimeout`
    is raised; with ``check`` a non-zero exit raises :class:`ClientError`
    (message includes stderr).  ``env`` replaces the environment entirely
    (use :func:`_clean_env` to build one).
    """
    argv = [os.fspath(c) for c in cmd]
    if isinstance(input, str) and not text:
        input = input.encode()
    proc: subprocess.Popen[Any] = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else _clean_env(),
        cwd=cwd,
        text=text,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise ClientTimeout(
            argv,
            None,
            _as_text(out),
            _as_text(err),
            message=f"command timed out after {timeout:.0f}s",
        ) from None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    # Children that daemonized out of the group are not our business here, but
    # anything still in the group (e.g. a helper left behind) is killed.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    result: subprocess.CompletedProcess[Any] = subprocess.CompletedProcess(
        argv, proc.returncode, out, err
    )
    if check and proc.returncode != 0:
        raise ClientError(argv, proc.returncode, _as_text(out), _as_text(err))
    return result


def _as_text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def tool_available(*names: str) -> bool:
    """True when every named executable is on PATH (for ``pytest.skip``)."""
    return all(shutil.which(n) for n in names)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _short_dir(prefix: str) -> Path:
    """A fresh directory with a short path, for unix sockets (108-byte limit)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _pids_referencing(needles: Iterable[str]) -> list[int]:
    """PIDs of processes whose command line mentions any of ``needles``."""
    needles = [n for n in needles if n]
    me = os.getpid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(int(entry))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _kill_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _unmount_under(*roots: Path) -> None:
    """Lazily unmount anything still mounted below ``roots`` (deepest first)."""
    prefixes = [str(r.resolve()) for r in roots]
    try:
        with open("/proc/self/mountinfo") as fh:
            points = [line.split()[4] for line in fh]
    except OSError:
        return
    targets = [p for p in points if any(p == pre or p.startswith(pre + "/") for pre in prefixes)]
    for point in sorted(set(targets), key=len, reverse=True):
        subprocess.run(
            ["umount", "-l", point],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )


def _stop_popen(proc: subprocess.Popen[Any] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=30)


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _wait_for(
    probe: Callable[[], bool],
    *,
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    what: str,
    log: Path | None,
    cmd: Sequence[str],
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ClientError(
                cmd,
                proc.returncode,
                stderr=_tail(log) if log else "",
                message=f"{what} exited during startup",
            )
        if probe():
            return
        if time.monotonic() > deadline:
            raise ClientTimeout(
                cmd,
                None,
                stderr=_tail(log) if log else "",
                message=f"{what} not ready after {timeout:.0f}s",
            )
        time.sleep(0.1)


# -- optional isolation of containers/image's blob-info cache ---------------
#
# skopeo and podman (as root) remember in /var/lib/containers/cache/
# blob-info-cache-v1.boltdb which blobs they have seen in which repository, and
# use it to try cross-repository blob mounts and to skip uploads.  That makes
# test outcomes depend on earlier tests.  There is no flag to move it, so we
# run the tool in a private mount namespace with a per-instance directory
# bind-mounted over that path.

_GLOBAL_BLOB_CACHE = "/var/lib/containers/cache"
_unshare_ok: bool | None = None


def _can_isolate_blob_cache() -> bool:
    global _unshare_ok
    if _unshare_ok is None:
        _unshare_ok = False
        if os.geteuid() == 0 and shutil.which("unshare"):
            try:
                os.makedirs(_GLOBAL_BLOB_CACHE, mode=0o700, exist_ok=True)
                probe = tempfile.mkdtemp(prefix="berth-cache-probe-")
                r = subprocess.run(
                    [*_cache_wrapper(probe), "true"],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
                shutil.rmtree(probe, ignore_errors=True)
                _unshare_ok = r.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _unshare_ok = False
    return _unshare_ok


def _cache_wrapper(cache_dir: str | os.PathLike[str]) -> list[str]:
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        f'mount --bind "$0" {_GLOBAL_BLOB_CACHE} && exec "$@"',
        os.fspath(cache_dir),
    ]


# --------------------------------------------------------------------------
# docker
# --------------------------------------------------------------------------

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


def _mkdir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


# --------------------------------------------------------------------------
# podman
# --------------------------------------------------------------------------


@dataclass
class PulledImage:
    ref: str
    image_id: str | None  # config digest ("sha256:..."), for the host platform
    digest: str  # digest of the top-level manifest / index that was pulled


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


# --------------------------------------------------------------------------
# containerd / ctr
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# skopeo
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# hand-written OCI image layouts (multi-arch indexes)
# --------------------------------------------------------------------------


@dataclass
class OciImage:
    platform: str  # "os/arch[/variant]"
    manifest_digest: str
    manifest: bytes
    config_digest: str
    layer_digests: list[str]


@dataclass
class OciLayout:
    path: Path
    tag: str
    digest: str  # top-level index digest (or manifest digest when not an index)
    media_type: str
    raw: bytes  # exact bytes of the top-level index/manifest
    images: list[OciImage]
    blobs: dict[str, int] = field(default_factory=dict)  # every blob digest -> size

    @property
    def ref(self) -> str:
        """``oci:PATH:TAG`` for skopeo."""
        return f"oci:{self.path}:{self.tag}"

    @property
    def manifest_digests(self) -> list[str]:
        return [im.manifest_digest for im in self.images]


def _canonical_json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _tar_one_file(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_oci_layout(
    path: str | os.PathLike[str],
    *,
    tag: str = "latest",
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
    layers_per_image: int = 2,
    layer_size: int = 64 * 1024,
    shared_base_layer: bool = True,
    as_index: bool = True,
    index_annotations: Mapping[str, str] | None = None,
) -> OciLayout:
    """Write an OCI image layout at ``path`` by hand (json + hashlib).

    One image per entry of ``platforms`` ("os/arch[/variant]"), each with
    ``layers_per_image`` gzip'd tar layers of random content (the first layer
    is shared by all images when ``shared_base_layer``), plus an OCI image
    index referencing them with their platforms; ``index.json`` points at the
    index under the ref name ``tag``.  With ``as_index=False`` (one platform
    only) ``index.json`` points straight at the single manifest.

    Push with ``Skopeo.copy(layout.ref, 'docker://...', all=True,
    preserve_digests=True)``.
    """
    if not platforms:
        raise ValueError("need at least one platform")
    if not as_index and len(platforms) != 1:
        raise ValueError("as_index=False needs exactly one platform")
    root = _mkdir(path)
    blob_dir = _mkdir(root / "blobs" / "sha256")
    blobs: dict[str, int] = {}

    def put(data: bytes) -> tuple[str, int]:
        digest = sha256_digest(data)
        (blob_dir / digest.split(":", 1)[1]).write_bytes(data)
        blobs[digest] = len(data)
        return digest, len(data)

    def make_layer(name: str) -> tuple[dict[str, Any], str]:
        tar = _tar_one_file(name, os.urandom(layer_size))
        diff_id = sha256_digest(tar)
        gz = gzip.compress(tar, compresslevel=6, mtime=0)
        digest, size = put(gz)
        return {"mediaType": MT_OCI_LAYER_GZIP, "digest": digest, "size": size}, diff_id

    shared = make_layer("base.bin") if shared_base_layer and layers_per_image > 0 else None
    images: list[OciImage] = []
    descriptors: list[dict[str, Any]] = []
    for plat in platforms:
        parts = plat.split("/")
        os_name, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) > 2 else None
        layer_descs: list[dict[str, Any]] = []
        diff_ids: list[str] = []
        for i in range(layers_per_image):
            if i == 0 and shared is not None:
                desc, diff_id = shared
            else:
                desc, diff_id = make_layer(
                    f"{os_name}-{arch}{'-' + variant if variant else ''}-{i}.bin"
                )
            layer_descs.append(desc)
            diff_ids.append(diff_id)
        config: dict[str, Any] = {
            "created": "1970-01-01T00:00:00Z",
            "architecture": arch,
            "os": os_name,
            "config": {"Labels": {"berth.test.platform": plat}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth tests"}]
            * len(diff_ids),
        }
        if variant:
            config["variant"] = variant
        config_digest, config_size = put(_canonical_json(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layer_descs,
        }
        manifest_bytes = _canonical_json(manifest)
        m_digest, m_size = put(manifest_bytes)
        platform_doc = {"architecture": arch, "os": os_name}
        if variant:
            platform_doc["variant"] = variant
        descriptors.append(
            {
                "mediaType": MT_OCI_MANIFEST,
                "digest": m_digest,
                "size": m_size,
                "platform": platform_doc,
            }
        )
        images.append(
            OciImage(
                plat, m_digest, manifest_bytes, config_digest, [d["digest"] for d in layer_descs]
            )
        )

    if as_index:
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_INDEX,
            "manifests": descriptors,
        }
        if index_annotations:
            index["annotations"] = dict(index_annotations)
        raw = _canonical_json(index)
        top_digest, top_size = put(raw)
        media_type = MT_OCI_INDEX
    else:
        raw = images[0].manifest
        top_digest, top_size = images[0].manifest_digest, len(raw)
        media_type = MT_OCI_MANIFEST
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_bytes(
        _canonical_json(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": media_type,
                        "digest": top_digest,
                        "size": top_size,
                        "annotations": {REF_NAME_ANNOTATION: tag},
                    }
                ],
            }
        )
    )
    return OciLayout(root, tag, top_digest, media_type, raw, images, blobs)


def read_oci_layout(path: str | os.PathLike[str], tag: str | None = None) -> OciLayout:
    """Read back an OCI layout (e.g. one skopeo wrote) for comparisons.

    Picks the ``index.json`` entry whose ref name is ``tag`` (or the only
    entry).  Verifies every referenced blob's digest and size.
    """
    root = Path(path)
    top = json.loads((root / "index.json").read_bytes())
    entries = top.get("manifests", [])
    if tag is not None:
        entries = [
            e for e in entries if (e.get("annotations") or {}).get(REF_NAME_ANNOTATION) == tag
        ]
    if len(entries) != 1:
        raise ValueError(
            f"{root}: expected one index.json entry for tag {tag!r}, got {len(entries)}"
        )
    entry = entries[0]
    blobs: dict[str, int] = {}

    def get(desc: Mapping[str, object]) -> bytes:
        digest = str(desc["digest"])
        data = (root / "blobs" / digest.replace(":", "/", 1)).read_bytes()
        if sha256_digest(data) != digest or len(data) != int(desc["size"]):  # type: ignore[call-overload]
            raise ValueError(f"{root}: blob {digest} does not match its descriptor")
        blobs[digest] = len(data)
        return data

    def image(desc: Mapping[str, object], plat: str) -> OciImage:
        raw = get(desc)
        man = json.loads(raw)
        get(man["config"])
        layers = [str(layer["digest"]) for layer in man["layers"]]
        for layer in man["layers"]:
            get(layer)
        return OciImage(plat, str(desc["digest"]), raw, str(man["config"]["digest"]), layers)

    raw = get(entry)
    doc = json.loads(raw)
    media_type = str(entry.get("mediaType") or doc.get("mediaType") or "")
    images: list[OciImage] = []
    if "manifests" in doc:
        for desc in doc["manifests"]:
            p = desc.get("platform") or {}
            plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            images.append(image(desc, plat))
    else:
        images.append(image(entry, ""))
    tag_name = (entry.get("annotations") or {}).get(REF_NAME_ANNOTATION, tag or "")
    return OciLayout(root, tag_name, str(entry["digest"]), media_type, raw, images, blobs)


def push_multiarch_index(
    registry: str,
    repo: str,
    tag: str,
    workdir: str | os.PathLike[str],
    *,
    skopeo: Skopeo | None = None,
    creds: str | None = None,
    **layout_kwargs: object,
) -> OciLayout:
    """Write a two-platform OCI layout under ``workdir`` and push it.

    ``skopeo copy --all --preserve-digests oci:DIR:TAG docker://REGISTRY/REPO:TAG``
    (plain HTTP).  Returns the layout; its ``digest`` is the index digest the
    registry must now serve for ``REPO:TAG``.
    """
    layout_dir = Path(tempfile.mkdtemp(prefix="oci-", dir=_mkdir(workdir)))
    layout = write_oci_layout(layout_dir, tag=tag, **layout_kwargs)  # type: ignore[arg-type]
    sk = skopeo or Skopeo(Path(workdir) / "skopeo")
    pushed = sk.copy(
        layout.ref,
        f"docker://{registry}/{repo}:{tag}",
        all=True,
        preserve_digests=True,
        dest_creds=creds,
    )
    if pushed != layout.digest:
        raise ClientError(
            ["skopeo", "copy"],
            0,
            message=f"pushed digest {pushed} != layout digest {layout.digest}",
        )
    return layout


# --------------------------------------------------------------------------
# reference registry: CNCF Distribution 2.8 (Debian "docker-registry")
# --------------------------------------------------------------------------


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
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = binary
        self.port = port
        self.delete_enabled = delete_enabled
        self.htpasswd = htpasswd
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


@contextlib.contextmanager
def _timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    """Record wall time of a block into ``sink[label]`` (used by validations)."""
    t0 = time.monotonic()
    try:
        yield
    finally:
        sink[label] = time.monotonic() - t0
