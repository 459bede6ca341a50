"""kit/db/sqlite3: write transactions of one process queue on a Python lock,
released however the transaction ends."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from kit.db.sqlite3.base import DatabaseWrapper, _write_lock

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These tests open their own database files, not the test database."""
    with django_db_blocker.unblock():
        yield


def wrapper(path) -> DatabaseWrapper:
    settings = {**connection.settings_dict, "NAME": str(path), "TEST": {}}
    settings["OPTIONS"] = {**settings["OPTIONS"], "transaction_mode": "IMMEDIATE"}
    db = DatabaseWrapper(settings, alias="queue-test")
    db.ensure_connection()
    return db


def test_concurrent_writers_all_commit_and_the_lock_is_released(tmp_path):
    path = tmp_path / "q.sqlite3"
    setup = wrapper(path)
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE counter (n INTEGER)")
        cursor.execute("INSERT INTO counter VALUES (0)")
    setup.close()
    errors: list[BaseException] = []

    def work() -> None:
        db = wrapper(path)
        try:
            for _ in range(20):
                db._start_transaction_under_autocommit()
                with db.cursor() as cursor:
                    cursor.execute("UPDATE counter SET n = n + 1")
                db.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check = wrapper(path)
    with check.cursor() as cursor:
        cursor.execute("SELECT n FROM counter")
        assert cursor.fetchone() == (160,)
    check.close()
    assert not _write_lock(str(path)).locked()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_the_lock_is_held_for_the_transaction_only(tmp_path, ending):
    path = tmp_path / "q.sqlite3"
    db = wrapper(path)
    db._start_transaction_under_autocommit()
    assert _write_lock(str(path)).locked()
    getattr(db, ending)()
    assert not _write_lock(str(path)).locked()
    db.close()
