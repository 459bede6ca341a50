"""A task for tests/test_brokers.py only, loaded into a test worker with
``celery worker --include tests.celery_probe``: it records each start and its
end in a file, so a test can kill the worker in between."""

from __future__ import annotations

import os
import time

from celery import shared_task


@shared_task
def slow_probe(path: str, seconds: float) -> None:
    with open(path, "a") as fh:
        fh.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"done {os.getpid()}\n")
