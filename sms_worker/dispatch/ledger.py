"""Writing what the stages decided: rows and events in one transaction, then pointers in one call.

Each disposition is a change of the message's lifecycle (:func:`~.changes.write_of`), applied by
:mod:`sms_worker.lifecycle.write`, fenced: a message the batch found waiting is changed only
while it still waits; a message the batch claimed only while its row still names this claim
(``claim_id``). When a row moved on (the reclaimer took a claim back), the batch's changes are
applied each on its own, and the answer of a call whose claim was taken back is a *late answer*
(:func:`~sms_worker.lifecycle.write.apply_each`). The reclaimer's changes go through here too.

When the database or Redis is unreachable nothing is dropped: the ledger holds the writes it
could not make, in order, and :meth:`Ledger.flush_held` (the worker's :class:`Flusher` thread,
and every later write) makes them when the server is back. The worker's lease is renewed
meanwhile by a thread of its own that never waits for a flush, so the reclaimer never takes back
what a live worker holds (:mod:`sms_worker.dispatch.lease`).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from sqlalchemy import Engine

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Batch
from sms_worker.dispatch.changes import Write, write_of
from sms_worker.lifecycle.changes import LedgerChange
from sms_worker.lifecycle.write import MovedOn, apply, apply_each
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.queues.pointers import Due, schedule

log = get_logger("ledger")


@dataclass(slots=True)
class _Held:
    changes: list[Write]
    pointers: list[Due] = field(default_factory=list)


class Ledger:
    def __init__(self, engine: Engine, client: redis.Redis, clock: Clock, first_check: timedelta) -> None:
        self._engine = engine
        self._redis = client
        self._clock = clock
        self._first_check = first_check
        self._held: deque[_Held] = deque()
        self._lock = threading.Lock()

    @property
    def holding(self) -> int:
        """Messages whose writes wait for a server to come back."""
        with self._lock:
            return sum(len(held.changes) + len(held.pointers) for held in self._held)

    def write(self, batch: Batch) -> None:
        """Write the dispositions of ``batch`` not written yet; hold them if a server is away."""
        items = batch.unwritten()
        if not items:
            return
        now = self._clock.now()
        writes = [write for item in items if (write := write_of(item, now, self._first_check)) is not None]
        for item in items:
            item.written = True
        self.write_changes(writes)

    def write_changes(self, writes: Sequence[Write]) -> None:
        """Write these changes and pointers (what the reclaimer decided, or a batch); hold them if
        a server is away."""
        with self._lock:
            self._held.append(_Held(list(writes)))
            self._drain()

    def flush_held(self) -> int:
        """Try the held writes again, oldest first; returns how many messages are still held."""
        with self._lock:
            self._drain()
        return self.holding

    def _drain(self) -> None:
        """Write what is held, oldest first, up to the first that fails (it stays held)."""
        while self._held:
            held = self._held[0]
            try:
                if held.changes:
                    held.pointers += self._commit(held.changes)
                    held.changes = []
                if held.pointers:
                    schedule(self._redis, held.pointers)
                    held.pointers = []
            except Exception as error:
                reason = describe_outage(error)
                if reason is None:
                    log.exception("writing %d dispatch outcome(s) failed; they are held and tried again", len(held.changes))
                else:
                    log.warning("%s: holding %d message(s)' outcomes until it is back", reason, len(held.changes) + len(held.pointers))
                return
            self._held.popleft()

    def _commit(self, writes: list[Write]) -> list[Due]:
        """One transaction for the rows and their events; returns the pointers of what was written.

        The common case costs one fenced ``UPDATE`` per kind of change (executemany) and one
        ``INSERT`` of events. Only when a row moved on (a claim the sweep took back) is the write
        done again, each change on its own under locks, sorting late answers out."""
        changes: list[LedgerChange] = [write.change for write in writes if write.change is not None]
        due: set[uuid.UUID] | None = None  # None: every change was applied
        if changes:
            try:
                with self._engine.begin() as conn:
                    apply(conn, changes)
            except MovedOn:
                with self._engine.begin() as conn:
                    due = apply_each(conn, changes, self._clock.now())
        return [write.pointer for write in writes if write.pointer is not None and (write.change is None or due is None or write.change.id in due)]


class Flusher:
    """Tries the ledger's held writes again every ``interval`` seconds, in a thread of its own
    (``sms-flush``): a flush may wait on the database or Redis for as long as they let it, and
    nothing else waits for it."""

    def __init__(self, ledger: Ledger, interval: float) -> None:
        self._ledger = ledger
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sms-flush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._ledger.holding:
                    self._ledger.flush_held()
            except Exception:  # the thread must go on: what is held is tried again next time
                log.exception("flushing held outcomes failed; trying again")
