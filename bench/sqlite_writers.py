"""Microbenchmark: concurrent SQLite write transactions, Django's backend vs
Berth's queued one (kit/db/sqlite3).

``python -m bench.sqlite_writers [--threads 16] [--transactions 60] [--work-ms 1]``

Each thread runs short ``BEGIN IMMEDIATE`` transactions (an insert, some Python
work, an insert, commit) on one database file with Berth's PRAGMAs
(WAL, synchronous=FULL), as concurrent pushes do. Prints transactions per
second for each backend, alternating, three rounds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path


def run(cls: type, settings: dict, threads: int, transactions: int, work_ms: float) -> float:
    def connect():  # type: ignore[no-untyped-def]
        db = cls(settings, alias="bench")
        db.ensure_connection()
        return db

    db = connect()
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
    db.close()

    def work() -> None:
        db = connect()
        for _ in range(transactions):
            db._start_transaction_under_autocommit()
            with db.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES ('a')")
                time.sleep(work_ms / 1000)
                cursor.execute("INSERT INTO t VALUES ('b')")
            db.commit()
        db.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return threads * transactions / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--transactions", type=int, default=60)
    parser.add_argument("--work-ms", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        os.environ.setdefault("BERTH_DATA_DIR", tmp)
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.db import connection
        from django.db.backends.sqlite3.base import DatabaseWrapper as Plain

        from kit.db.sqlite3.base import DatabaseWrapper as Queued

        for round_ in range(3):
            for cls in (Plain, Queued):
                path = Path(tmp) / f"{cls.__module__}-{round_}.sqlite3"
                settings = {**connection.settings_dict, "NAME": str(path)}
                rate = run(cls, settings, args.threads, args.transactions, args.work_ms)
                print(f"{cls.__module__:36s} {rate:6.0f} transactions/s")


if __name__ == "__main__":
    main()
