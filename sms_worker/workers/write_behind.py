"""The write-behind: changes of messages and their pointers, written now, or held, in order,
while the database or Redis is away, and written when it is back.

Nothing is dropped: :meth:`WriteBehind.write` appends what it is given to what it holds and
writes all it can, oldest first, up to the first that fails, which stays held with everything
after it. :meth:`WriteBehind.flush` tries again (the worker's :class:`Flusher` thread, and every
later write). Each change is applied by :mod:`sms_worker.lifecycle.write`, fenced: when a row
moved on (the reclaimer took a claim back), the changes are applied again each on its own, and
the answer of a call whose claim was taken back is a *late answer*
(:func:`~sms_worker.lifecycle.write.apply_each`); only the pointers of changes applied are
scheduled. The worker's lease is renewed meanwhile by a thread of its own that never waits for a
flush, so the reclaimer never takes back what a live worker holds (:mod:`.lease`).

What to write is decided above: the dispatch ledger turns a batch's dispositions into
:class:`Write` values (:mod:`sms_worker.dispatch.ledger`), the reclaimer its claims taken back.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine

from sms_worker.clock import Clock
from sms_worker.lifecycle.changes import DispatchChange
from sms_worker.lifecycle.write import MovedOn, apply, apply_each
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.queues.pointers import Due, schedule
from sms_worker.workers.ticker import Ticker

log = get_logger("ledger")


@dataclass(frozen=True, slots=True)
class Write:
    """What one message's disposition writes: a change of its row (None: the row stays as it is)
    and the pointer that brings it back (None: none)."""

    change: DispatchChange | None
    pointer: Due | None


@dataclass(slots=True)
class _Held:
    changes: list[Write]
    pointers: list[Due] = field(default_factory=list)


class WriteBehind:
    """This process's writes of changes and pointers, held while a server is away. Safe to
    share across threads."""

    def __init__(self, engine: Engine, client: redis.Redis, clock: Clock) -> None:
        self._engine = engine
        self._redis = client
        self._clock = clock
        self._held: deque[_Held] = deque()
        self._lock = threading.Lock()

    @property
    def holding(self) -> int:
        """Messages whose writes wait for a server to come back."""
        with self._lock:
            return sum(len(held.changes) + len(held.pointers) for held in self._held)

    def write(self, writes: Sequence[Write]) -> None:
        """Write these changes and pointers after what is held; hold them if a server is away."""
        with self._lock:
            self._held.append(_Held(list(writes)))
            self._drain()

    def flush(self) -> int:
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
        changes: list[DispatchChange] = [write.change for write in writes if write.change is not None]
        due: set[uuid.UUID] | None = None  # None: every change was applied
        if changes:
            try:
                with self._engine.begin() as conn:
                    apply(conn, changes)
            except MovedOn:
                with self._engine.begin() as conn:
                    due = apply_each(conn, changes, self._clock.now())
        return [write.pointer for write in writes if write.pointer is not None and (write.change is None or due is None or write.change.id in due)]


class Flusher(Ticker):
    """Tries the write-behind's held writes again every ``interval`` seconds, in a thread of its
    own (``sms-flush``): a flush may wait on the database or Redis for as long as they let it,
    and nothing else waits for it."""

    def __init__(self, write_behind: WriteBehind, interval: float) -> None:
        super().__init__("sms-flush", interval)
        self._write_behind = write_behind

    def tick(self) -> None:
        try:
            if self._write_behind.holding:
                self._write_behind.flush()
        except Exception:  # the thread must go on: what is held is tried again next time
            log.exception("flushing held outcomes failed; trying again")
