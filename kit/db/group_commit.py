"""Group commit: the short write transactions of many requests, run as one.

SQLite admits one writer. Under concurrent pushes every blob registration and
every new upload session waits its turn for it, and each turn costs a
``BEGIN IMMEDIATE``, a few statements and a ``COMMIT``, each statement slowed by
the GIL hand-overs of the other request threads (docs/benchmarks.md, "Where the
concurrent pushes go"). A ``GroupCommit`` lets them share turns:

- a caller queues its item and takes the group's leader lock;
- the caller that gets it first runs every item queued by then, in one
  transaction, through a function written for a batch (bulk statements), and
  hands each caller its own result;
- the callers that waited meanwhile find their items done and return at once.

Alone (no concurrency) a caller is its own leader: one transaction, as before.

Failures stay with their item. The batch function reports an item's own error
(a missing project, say) as that item's result; if the batch fails as a whole,
each caller runs its own item again, alone, in its own transaction on its own
connection, so only the item at fault fails (a fault of the leader's own, such
as a broken connection, stays the leader's). A caller already inside a
transaction runs its item alone in that transaction: a leader must never make
others' work part of a transaction that it does not own and may still roll back.

On PostgreSQL the batching does no harm (one commit instead of many); the batch
functions sort their rows so that concurrent batches lock them in one order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from django.db import transaction

T = TypeVar("T")
R = TypeVar("R")

# Items a batch function may be given at once: bounds a transaction's length.
BATCH_LIMIT = 200


class _Slot(Generic[T, R]):
    __slots__ = ("alone", "done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.alone = False  # its batch failed: the caller runs it again, alone


class GroupCommit(Generic[T, R]):
    """Runs ``run(items)`` inside ``transaction.atomic()`` for batches of items
    submitted by concurrent threads. ``run`` returns one entry per item, in
    order: the item's result, or the exception its caller should get."""

    def __init__(self, run: Callable[[Sequence[T]], list[R | Exception]]) -> None:
        self._run = run
        self._queue: list[_Slot[T, R]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def submit(self, item: T) -> R:
        if transaction.get_connection().in_atomic_block:
            return self._outcome(self._execute_alone(item))
        slot: _Slot[T, R] = _Slot(item)
        with self._queue_lock:
            self._queue.append(slot)
        while not slot.done:
            with self._leader:
                if slot.done:
                    break
                with self._queue_lock:
                    batch = self._queue[:BATCH_LIMIT]
                    del self._queue[:BATCH_LIMIT]
                self._execute(batch)
        if slot.alone:
            return self._outcome(self._execute_alone(slot.item))
        return self._outcome(slot)

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _execute_alone(self, item: T) -> _Slot[T, R]:
        slot: _Slot[T, R] = _Slot(item)
        self._execute([slot])
        return slot

    def _execute(self, batch: list[_Slot[T, R]]) -> None:
        try:
            with transaction.atomic():
                results = self._run([slot.item for slot in batch])
        except BaseException as error:
            if len(batch) == 1:
                batch[0].error, batch[0].done = error, True
            else:
                # Each caller runs its own item again, in its own transaction and
                # on its own connection: a fault of the leader's (a broken
                # connection, its thread being stopped) stays the leader's.
                for slot in batch:
                    slot.alone, slot.done = True, True
            if not isinstance(error, Exception):
                raise
            return
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                slot.error = result
            else:
                slot.result = result
            slot.done = True
