"""The process supervisor ``manage.py serve`` becomes once its children run.

``serve`` needs Django to migrate, bootstrap and start its children; supervising
them needs none of it. So, once the children are started, ``serve`` replaces
itself (``os.execv``, same pid: the children stay its children) with
``python -I registry/supervisor.py NAME=PID ...``, which imports only the
standard library: the supervisor stays at ~10 MiB instead of holding all of Django
(~85 MiB RSS) for the life of the server. Written by hand because it is forty
lines of ``waitpid``/``kill`` that must not pull in a framework.

On SIGTERM or SIGINT it marks the server draining (``/readyz`` answers 503),
keeps serving ``BERTH_DRAIN_SECONDS`` (default 0) so balancers notice, then
forwards SIGTERM to every child still running (granian
then stops accepting connections and lets in-flight requests finish; Celery
finishes its running tasks), waits up to ``BERTH_STOP_GRACE`` seconds, kills what
is left, and exits 0. When a child exits on its own, it stops the others and
exits 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

STOP_GRACE = 20.0


def _reap(children: dict[str, int]) -> dict[str, int]:
    """Collect every child that exited; return {name: exit status} of those."""
    done: dict[str, int] = {}
    for name, pid in list(children.items()):
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            got, status = pid, 0
        if got == pid:
            done[name] = os.waitstatus_to_exitcode(status)
            del children[name]
    return done


def mark_not_ready() -> None:
    """Readiness hook for a graceful drain, called when the server is asked to
    stop, before the children get SIGTERM: creates ``BERTH_DRAIN_FILE`` (which
    ``serve`` put in the children's environment), the file whose existence makes
    a ``/readyz`` answer 503 (kit.health, where present). granian then stops
    accepting connections and lets in-flight requests finish."""
    path = os.environ.get("BERTH_DRAIN_FILE", "")
    if path:
        with contextlib.suppress(OSError):
            open(path, "a").close()


def stop_children(children: dict[str, int], grace: float = STOP_GRACE) -> None:
    """SIGTERM to every child, wait up to ``grace`` seconds, then SIGKILL."""
    for pid in children.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while children and time.monotonic() < deadline:
        _reap(children)
        time.sleep(0.05)
    for name, pid in children.items():
        sys.stderr.write(f"{name} did not stop within {grace:.0f} s; killing it\n")
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    children.clear()


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name) or default))
    except ValueError:
        return default


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _wait_for_balancers(children: dict[str, int], seconds: float) -> None:
    """Keep serving for ``BERTH_DRAIN_SECONDS`` while readiness already answers
    503, so a load balancer or Kubernetes takes the replica out of rotation
    before it stops accepting connections. Ends early if a child exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not _reap(children):
        time.sleep(0.05)


def supervise(children: dict[str, int], grace: float = STOP_GRACE) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # serve blocked them before exec (a signal sent meanwhile is pending): take it now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    status = 0
    while not stopping:
        exited = _reap(children)
        if exited:
            for name, code in exited.items():
                sys.stderr.write(f"{name} exited with {code}; stopping\n")
            status = 1
            break
        time.sleep(0.2)
    if status == 0:
        mark_not_ready()
        _wait_for_balancers(children, _seconds("BERTH_DRAIN_SECONDS", 0.0))
    stop_children(children, grace)
    path = os.environ.get("BERTH_DRAIN_FILE", "")
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return status


def main(argv: list[str]) -> int:
    children = {name: int(pid) for name, _, pid in (arg.partition("=") for arg in argv)}
    grace = _seconds("BERTH_STOP_GRACE", STOP_GRACE)
    return supervise(children, grace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
