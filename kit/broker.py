"""The embedded default's Celery broker: kombu's filesystem transport, with
messages that appear in the queue folder whole.

kombu's own ``_put`` creates the message file under its final name, then locks
it, then writes; its ``_get`` (in another process) moves and reads files
without taking the lock. A consumer that lists the folder between the create
and the write reads an empty or half-written message, fails to decode it and
the Celery worker exits (seen in the replication suite: the worker died, and
``serve`` stopped with it). Here a message is written under a name no
consumer takes (``….msg.part``) and renamed into place, which is atomic on one
file system; a consumer renames a message into ``processed_folder`` (the same
file system: both live under ``BERTH_DATA_DIR/queue``) to claim it, so two
consumers never read the same message.

A file that still does not decode (written by something else, or damaged) is
renamed ``….bad`` and logged, and the consumer takes the next message instead
of dying: the bad file is kept for the operator, nothing else is lost.

Chosen in portal/settings.py (``CELERY_BROKER_TRANSPORT``) when
``CELERY_BROKER_URL`` is ``filesystem://``; Redis and RabbitMQ use kombu's
transports unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

PART = ".part"
BAD = ".bad"


class Channel(filesystem.Channel):
    def _put(  # type: ignore[override]  # kombu's own names disagree
        self, queue: str, payload: Any, **kwargs: Any
    ) -> None:
        # The name sorts by time (consumers take the oldest first); zero-padded,
        # so that it also sorts by time as text, which kombu's names do not.
        name = f"{round(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        part = final + PART
        try:
            with open(part, "wb") as fh:
                fh.write(dumps(payload).encode())
            os.replace(part, final)
        except OSError as exc:
            # A full disk, say: the sender gets the error, and no part is left.
            with contextlib.suppress(OSError):
                os.remove(part)
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            # "….msg.part" and "….msg.bad" do not match: not whole, or set aside.
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.processed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # another consumer took it first
            try:
                with open(claimed, "rb") as fh:
                    payload = fh.read()
            except OSError as exc:
                raise ChannelError(f"Cannot read message {name!r} from the queue") from exc
            try:
                message = loads(payload.decode())
            except ValueError:
                os.replace(claimed, claimed + BAD)
                log.error(
                    "broker: message %s does not decode; kept as %s, skipped",
                    name,
                    claimed + BAD,
                )
                continue
            if not self.store_processed:
                os.remove(claimed)
            return message
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
