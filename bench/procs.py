"""Processes: start them in their own session, measure their memory, stop them.

Memory is read from /proc (no dependency): for a set of root PIDs, every
descendant is found through the parent links in ``/proc/*/stat`` and its
``VmRSS`` (resident set) and ``Pss`` (proportional set, shared pages divided
among the sharers, from ``smaps_rollup``) are summed. The RSS sum over-counts
pages that forked workers share; the PSS sum does not. Targets use the RSS sum
(the conservative one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded by ``timeout``), capturing its output."""
    r = subprocess.run(
        [os.fspath(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        check=False,
        input=input,
    )
    if check and r.returncode != 0:
        cmd = " ".join(map(str, argv))
        raise RuntimeError(f"{cmd} exited {r.returncode}:\n{r.stderr[-3000:]}{r.stdout[-2000:]}")
    return r


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        if rest[0] == "Z":
            continue
        out[int(entry)] = int(rest[1])
    return out


def tree(roots: Iterable[int]) -> list[int]:
    """``roots`` and all their live descendants."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    seen: list[int] = []
    todo = [r for r in roots if r in parents]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def _proc_mem(pid: int) -> tuple[str, int, int] | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            status = fh.read()
    except OSError:
        return None
    name, rss = "?", 0
    for line in status.splitlines():
        if line.startswith("Name:"):
            name = line.split(None, 1)[1].strip()
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
    except OSError:
        pss = rss
    return name, rss, pss


def memory(roots: Iterable[int]) -> dict[str, Any]:
    """Summed RSS and PSS (bytes) of the process trees under ``roots``."""
    procs = []
    for pid in tree(roots):
        m = _proc_mem(pid)
        if m is None:
            continue
        procs.append({"pid": pid, "name": m[0], "rss": m[1], "pss": m[2]})
    return {
        "rss": sum(p["rss"] for p in procs),
        "pss": sum(p["pss"] for p in procs),
        "processes": len(procs),
        "by_process": sorted(procs, key=lambda p: -p["rss"]),
    }


class MemorySampler:
    """Samples the memory of some process trees in a thread; keeps the peaks."""

    def __init__(self, roots: Iterable[int], interval: float = 0.25) -> None:
        self.roots = list(roots)
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_by_label: dict[str, int] = {}
        self.label = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            m = memory(self.roots)
            self.peak_rss = max(self.peak_rss, m["rss"])
            self.peak_pss = max(self.peak_pss, m["pss"])
            label = self.label
            self.peak_by_label[label] = max(self.peak_by_label.get(label, 0), m["rss"])
            self._stop.wait(self.interval)


def wait_for(probe: Any, *, timeout: float, interval: float = 0.02, what: str = "") -> float:
    """Call ``probe()`` until it returns true; return the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return time.monotonic() - t0
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what or probe} not ready after {timeout:.0f}s (last error: {last})")


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """utime + stime + cutime + cstime (reaped children) of one process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in rest[11:15]) / _TICK


def cpu_ticks() -> tuple[float, float, float]:
    """Whole-machine CPU seconds since boot (all cores): (busy, steal, total).

    *busy* leaves out idle, iowait and steal; *steal* is the time the
    hypervisor ran something else while this machine's CPUs wanted to run (a
    virtual machine on a shared host). Steal slows a measurement without
    anything on this machine having changed: the server and the load generator
    wait for their CPUs, and what runs beside them on the host's cores makes
    every instruction dearer (this machine measured up to 2.5x the CPU time
    per manifest GET at 40-60 % steal)."""
    with open("/proc/stat") as fh:
        return parse_cpu_line(fh.readline())


def parse_cpu_line(line: str) -> tuple[float, float, float]:
    """The aggregate ``cpu`` line of /proc/stat, as :func:`cpu_ticks` returns it."""
    fields = [int(x) for x in line.split()[1:9]]
    fields += [0] * (8 - len(fields))
    idle = fields[3] + fields[4]
    steal = fields[7]
    total = sum(fields[:8])
    return (total - idle - steal) / _TICK, steal / _TICK, total / _TICK


class Steal:
    """The share of the machine's CPU time the hypervisor took over a span."""

    def __init__(self, ticks: tuple[float, float, float] | None = None) -> None:
        _, self.steal0, self.total0 = ticks or cpu_ticks()

    def result(self, ticks: tuple[float, float, float] | None = None) -> float:
        _, steal, total = ticks or cpu_ticks()
        span = total - self.total0
        return (steal - self.steal0) / span if span > 0 else 0.0


class ForeignCpu:
    """CPU time used on this machine by processes the harness did not start,
    over a span: machine busy time minus this process tree's (children that
    exited are counted in their parents' cutime/cstime). Other people's work on
    a shared machine shows up here and is reported next to the numbers."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        ticks = cpu_ticks()
        self.busy0, self.steal = ticks[0], Steal(ticks)
        self.ours0 = self._ours()

    @staticmethod
    def _ours() -> float:
        return sum(_cpu_of(pid) for pid in tree([os.getpid()]))

    def result(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        ticks = cpu_ticks()
        busy = ticks[0] - self.busy0
        ours = self._ours() - self.ours0
        foreign = max(0.0, busy - ours)
        try:
            with open("/proc/loadavg") as fh:
                load = float(fh.read().split()[0])
        except OSError:
            load = -1.0
        return {
            "wall_seconds": wall,
            "machine_busy_seconds": busy,
            "harness_seconds": ours,
            "foreign_seconds": foreign,
            "foreign_share": foreign / (wall * (os.cpu_count() or 1)) if wall else 0.0,
            "loadavg_end": load,
            "steal_share": self.steal.result(ticks),
        }
