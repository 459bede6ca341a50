"""The embedded default's broker (kit/broker.py): a consumer never sees a message
before it is whole, two consumers never take the same one, and a file that does
not decode is set aside instead of killing the worker."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from queue import Empty

import kombu
import pytest
from kombu.exceptions import ChannelError

from kit import broker

pytestmark = pytest.mark.dbindependent


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, str]:
    queue, processed = tmp_path / "in", tmp_path / "processed"
    queue.mkdir()
    processed.mkdir()
    return {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(processed),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }


def channel(options: dict[str, str]):
    conn = kombu.Connection(
        "filesystem://", transport="kit.broker:Transport", transport_options=options
    )
    return conn, conn.channel()


def test_the_settings_choose_this_transport_for_the_default_broker():
    from portal.celery import app

    with app.connection_for_write() as conn:
        assert conn.transport_cls == "kit.broker:Transport"
        assert type(conn.transport) is broker.Transport


def test_a_message_is_invisible_until_whole_then_taken_once(folders, monkeypatch):
    conn, ch = channel(folders)
    other_conn, other = channel(folders)
    seen: list[object] = []
    real_replace = os.replace

    def replace(src, dst):
        # Written, not yet in place: no consumer can count or take it.
        if src.endswith(broker.PART):
            assert Path(src).read_bytes()  # the bytes are all there...
            assert other._size("jobs") == 0  # ...under a name nobody takes
            with pytest.raises(Empty):
                other._get("jobs")
            seen.append(src)
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace)
    ch._put("jobs", {"body": "x" * 100_000, "n": 1})
    monkeypatch.undo()
    assert seen, "the message was not renamed into place"
    assert other._size("jobs") == 1
    assert other._get("jobs") == {"body": "x" * 100_000, "n": 1}
    with pytest.raises(Empty):
        ch._get("jobs")
    assert os.listdir(folders["data_folder_in"]) == []
    assert os.listdir(folders["processed_folder"]) == []
    conn.release()
    other_conn.release()


def test_concurrent_producers_and_consumers_lose_and_duplicate_nothing(folders):
    per_producer, producers, consumers = 300, 2, 2
    taken: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()
    lock = threading.Lock()

    def produce(first: int) -> None:
        conn, ch = channel(folders)
        try:
            for n in range(first, first + per_producer):
                ch._put("jobs", {"n": n, "pad": "p" * 20_000})
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)
        finally:
            conn.release()

    def consume() -> None:
        conn, ch = channel(folders)
        try:
            while not done.is_set():
                try:
                    message = ch._get("jobs")
                except Empty:
                    continue
                with lock:
                    taken.append(message["n"])
                    if len(taken) == per_producer * producers:
                        done.set()
        except BaseException as exc:
            errors.append(exc)
            done.set()
        finally:
            conn.release()

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    threads += [
        threading.Thread(target=produce, args=(i * per_producer,)) for i in range(producers)
    ]
    for t in threads:
        t.start()
    done.wait(timeout=120)
    done.set()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(taken) == list(range(per_producer * producers))


def test_a_message_that_does_not_decode_is_kept_aside_and_the_next_is_taken(folders, caplog):
    conn, ch = channel(folders)
    queue = Path(folders["data_folder_in"])
    (queue / "000000000000000_damaged.jobs.msg").write_bytes(b'{"half": ')
    ch._put("jobs", {"n": 2})
    with caplog.at_level(logging.ERROR, logger="kit.broker"):
        assert ch._get("jobs") == {"n": 2}
    assert "000000000000000_damaged.jobs.msg does not decode" in caplog.text
    kept = Path(folders["processed_folder"]) / "000000000000000_damaged.jobs.msg.bad"
    assert kept.read_bytes() == b'{"half": '
    with pytest.raises(Empty):
        ch._get("jobs")
    conn.release()


def test_a_message_that_cannot_be_written_is_an_error_and_leaves_nothing(folders, monkeypatch):
    conn, ch = channel(folders)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(broker.os, "replace", disk_full)
    with pytest.raises(ChannelError, match="Cannot add message"):
        ch._put("jobs", {"n": 1})
    monkeypatch.undo()
    assert os.listdir(folders["data_folder_in"]) == []
    with pytest.raises(Empty):
        ch._get("jobs")
    conn.release()
