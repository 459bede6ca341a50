"""kit/db/group_commit: concurrent callers' writes share one transaction,
each caller gets its own result, and a failure stays with its item."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence

import pytest
from django.db import IntegrityError, connection, transaction

from kit.db.group_commit import GroupCommit, _Slot
from registry.models import Upload
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_queue(group: GroupCommit, length: int) -> None:
    """Until ``length`` items wait behind the current leader."""
    wait_until(lambda: len(group._queue) >= length, interval=0.005, what=f"{length} queued")


def hold_first_batch(group: GroupCommit, monkeypatch, queued: int) -> list[int]:
    """Make the group's first batch wait for ``queued`` items behind it, so that
    they are sure to form the second; returns the sizes of the batches run."""
    batches: list[int] = []
    real = group._run

    def held(items):
        if not batches:
            wait_for_queue(group, queued)
        batches.append(len(items))
        return real(items)

    monkeypatch.setattr(group, "_run", held)
    return batches


class Stopped(BaseException):
    """Not an error of the batch: its leader's thread is stopped."""


class Recorder:
    """A batch function that inserts one session row per item and records each
    batch; its first batch waits until ``hold`` more items are queued behind
    it, so that they are sure to form the second batch."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.batches: list[list[str]] = []
        self.atomic: list[bool] = []
        self.threads: list[str] = []
        self.group: GroupCommit[str, Upload] = GroupCommit(self.run)

    def run(self, names: Sequence[str]) -> list[Upload | Exception]:
        if not self.batches:
            wait_for_queue(self.group, self.hold)
        self.batches.append(list(names))
        self.atomic.append(connection.in_atomic_block)
        self.threads.append(threading.current_thread().name)
        results: list[Upload | Exception] = []
        if len(names) > 1 and "stop" in names:
            raise Stopped  # the leader's thread is being stopped mid-batch
        for name in names:
            if name.startswith("own-error"):
                results.append(ValueError(f"no good: {name}"))
                continue
            row = Upload(repository_name=name, owner="group-test")
            if name.startswith("duplicate"):
                row.pk = uuid.UUID(int=1)  # an existing row's key: the batch fails
            row.save(force_insert=True)
            results.append(row)
        return results


def in_threads(
    names: list[str], submit: Callable[[str], Upload], group: GroupCommit
) -> dict[str, object]:
    """Submit each name from a thread of its own, the first one first: the
    others start once it leads ``group`` (holds the leader's lock, its item
    taken from the queue)."""
    outcomes: dict[str, object] = {}

    def call(name: str) -> None:
        try:
            outcomes[name] = submit(name)
        except BaseException as error:
            outcomes[name] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(name,), name=name) for name in names]
    threads[0].start()
    wait_until(lambda: group._leader.locked() and not group._queue, what="the first leads")
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_items_share_one_transaction_and_each_gets_its_own_result():
    recorder = Recorder(hold=7)
    names = [f"repo/{i}" for i in range(8)]
    outcomes = in_threads(names, recorder.group.submit, recorder.group)
    # The leader's own item went alone; the 7 that queued meanwhile went together.
    assert [len(batch) for batch in recorder.batches] == [1, 7]
    assert recorder.batches[0] == ["repo/0"]
    assert sorted(recorder.batches[1]) == names[1:]
    assert recorder.atomic == [True, True]
    for name in names:
        row = outcomes[name]
        assert isinstance(row, Upload) and row.repository_name == name
    stored = Upload.objects.filter(owner="group-test")
    assert sorted(stored.values_list("repository_name", flat=True)) == names
    assert recorder.group._queue == []


def test_a_failed_batch_is_run_again_by_each_caller_and_only_the_culprit_fails(monkeypatch):
    Upload.objects.create(pk=uuid.UUID(int=1), repository_name="first", owner="other")
    recorder = Recorder(hold=4)
    queue_retries(recorder.group, monkeypatch)
    names = ["repo/lead", "repo/a", "duplicate", "repo/b", "repo/c"]
    outcomes = in_threads(names, recorder.group.submit, recorder.group)
    assert isinstance(outcomes["duplicate"], IntegrityError)
    for name in ("repo/lead", "repo/a", "repo/b", "repo/c"):
        assert isinstance(outcomes[name], Upload), outcomes[name]
    # The batch of four failed; each caller ran its item again, alone, on its
    # own thread (its own connection), not the leader's.
    assert len(recorder.batches) == 1 + 1 + 4
    assert [len(batch) for batch in recorder.batches[2:]] == [1, 1, 1, 1]
    retried = dict(zip(recorder.threads[2:], recorder.batches[2:], strict=True))
    assert retried == {name: [name] for name in names[1:]}
    # Nothing twice, nothing lost: the failed batch's rows were rolled back.
    stored = sorted(
        Upload.objects.filter(owner="group-test").values_list("repository_name", flat=True)
    )
    assert stored == ["repo/a", "repo/b", "repo/c", "repo/lead"]
    assert Upload.objects.get(pk=uuid.UUID(int=1)).repository_name == "first"


def queue_retries(group: GroupCommit, monkeypatch) -> None:
    """The retries after a failed batch run on the callers' threads at once. The
    test database (SQLite in memory) answers "table is locked" to concurrent
    writers where a real one queues them (BEGIN IMMEDIATE, kit/db/sqlite3):
    queue them here too."""
    queue = threading.Lock()
    alone = group._execute_alone

    def queued(item):
        with queue:
            return alone(item)

    monkeypatch.setattr(group, "_execute_alone", queued)


def test_a_leader_stopped_mid_batch_stops_alone(monkeypatch):
    """The leader's thread is stopped (a BaseException) while it writes others'
    items: it goes down alone; every other caller writes its own item."""
    recorder = Recorder(hold=3)
    queue_retries(recorder.group, monkeypatch)
    names = ["repo/lead", "repo/a", "stop", "repo/b"]
    outcomes = in_threads(names, recorder.group.submit, recorder.group)
    stopped = [name for name, outcome in outcomes.items() if isinstance(outcome, Stopped)]
    assert len(stopped) == 1 and stopped[0] != "repo/lead", outcomes
    for name in set(names) - set(stopped):
        assert isinstance(outcomes[name], Upload), outcomes[name]
    stored = set(
        Upload.objects.filter(owner="group-test").values_list("repository_name", flat=True)
    )
    assert stored == set(names) - set(stopped)


def test_an_items_own_error_reaches_its_caller_only():
    recorder = Recorder(hold=3)
    names = ["repo/lead", "repo/a", "own-error", "repo/b"]
    outcomes = in_threads(names, recorder.group.submit, recorder.group)
    assert isinstance(outcomes["own-error"], ValueError)
    assert str(outcomes["own-error"]) == "no good: own-error"
    assert [len(batch) for batch in recorder.batches] == [1, 3]
    stored = sorted(
        Upload.objects.filter(owner="group-test").values_list("repository_name", flat=True)
    )
    assert stored == ["repo/a", "repo/b", "repo/lead"]


def test_a_caller_inside_a_transaction_runs_alone_in_it():
    """Its work must roll back with its own transaction, and nobody else's
    work may be made part of it."""
    recorder = Recorder(hold=0)
    queued = _Slot("repo/queued")  # another caller's item, waiting for a leader
    recorder.group._queue.append(queued)
    with pytest.raises(RuntimeError), transaction.atomic():
        row = recorder.group.submit("repo/inner")
        assert Upload.objects.filter(pk=row.pk).exists()
        raise RuntimeError("the caller's transaction fails")
    assert not Upload.objects.filter(repository_name="repo/inner").exists()
    assert recorder.batches == [["repo/inner"]]
    assert recorder.group._queue == [queued] and not queued.done


def test_blob_registrations_of_concurrent_uploads_share_a_transaction(test_projects, monkeypatch):
    """Blob registration (the end of every upload) through the group: eight
    concurrent uploads' blobs (two of the same bytes), links and session rows
    in two transactions; the one into a project that does not exist gets
    NAME_UNKNOWN and changes nothing, its session included."""
    from registry.errors import Code, RegistryError
    from registry.models import Blob, RepositoryBlob
    from registry.services import blobs

    batches = hold_first_batch(blobs._registrations, monkeypatch, queued=7)
    names = ["a/lead"] + [f"a/r{i}" for i in range(6)] + ["nosuchproject/x"]
    digests = {name: "sha256:" + f"{i:064x}" for i, name in enumerate(names)}
    digests["a/r5"] = digests["a/r0"]  # the same bytes pushed into two repositories
    sessions = {
        name: Upload.objects.create(repository_name=name, owner="group-test").pk for name in names
    }

    outcomes = in_threads(
        names,
        lambda name: blobs.blob_register(
            repository_name=name, digest=digests[name], size=100, upload_id=sessions[name]
        ),
        blobs._registrations,
    )
    assert batches == [1, 7]
    failed = outcomes.pop("nosuchproject/x")
    assert isinstance(failed, RegistryError) and failed.code == Code.NAME_UNKNOWN
    for name, blob in outcomes.items():
        assert isinstance(blob, Blob) and blob.digest == digests[name], (name, blob)
    linked = set(RepositoryBlob.objects.values_list("repository__name", "blob__digest"))
    assert linked == {(name, digests[name]) for name in outcomes}
    assert Blob.objects.filter(digest=digests["nosuchproject/x"]).count() == 0
    left = set(Upload.objects.filter(owner="group-test").values_list("repository_name", flat=True))
    assert left == {"nosuchproject/x"}


def test_upload_sessions_started_at_once_share_a_transaction(
    test_projects, monkeypatch, settings, tmp_path
):
    """POSTs that start uploads at once: their session rows in two
    transactions, each request with a session of its own, ready for bytes."""
    from registry.services import uploads

    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "registry.storage.filesystem.FileSystemBlobStore",
            "OPTIONS": {"location": str(tmp_path / "registry")},
        },
    }
    batches = hold_first_batch(uploads._starts, monkeypatch, queued=5)
    names = [f"a/start{i}" for i in range(6)]
    outcomes = in_threads(
        names,
        lambda name: uploads.upload_start(repository_name=name, owner="group-test"),
        uploads._starts,
    )
    assert batches == [1, 5]
    rows = {row.repository_name: row.pk for row in Upload.objects.filter(owner="group-test")}
    assert sorted(rows) == names
    for name, upload in outcomes.items():
        assert isinstance(upload, Upload) and upload.pk == rows[name]
        assert upload.size == 0 and upload.sha256 == uploads.EMPTY_SHA256
    assert len(set(rows.values())) == 6
