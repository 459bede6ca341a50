"""A task for tests/test_brokers.py only, loaded into a test worker with
``celery worker --include tests.celery_probe``: it records each start and its
end in a file, and between them waits until the test creates ``release``, so
a test can kill the worker while the task runs, whatever the machine's speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task
def held_probe(path: str, release: str, ceiling: float = 600) -> None:
    with open(path, "a") as fh:
        fh.write(f"start {os.getpid()}\n")
    deadline = time.monotonic() + ceiling
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(path, "a") as fh:
        fh.write(f"done {os.getpid()}\n")
