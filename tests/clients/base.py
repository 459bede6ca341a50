"""What every client driver shares: running a command with a timeout in its own
process group, the errors it raises, waiting for a daemon, stopping strays, and
isolating containers/image's blob-info cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 300.0

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


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


@dataclass
class PulledImage:
    ref: str
    image_id: str | None  # config digest ("sha256:..."), for the host platform
    digest: str  # digest of the top-level manifest / index that was pulled


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


def _mkdir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
