"""Writing what the stages decided: rows and events in one transaction, then pointers in one call.

Every write is fenced. A message the batch found waiting is changed only while it still waits; a
message the batch claimed only while its row still names this claim (``claim_id``). The answer
of a call whose claim the recovery sweep took back meanwhile (the worker was thought dead) is a
*late answer*: it goes to the history, and an acceptance also wins over the sweep's guess while
nothing newer has started, so the message is not sent again; an acceptance that comes after
something newer started marks the message ``possible_duplicate``.

When the database or Redis is unreachable nothing is dropped: the ledger holds the writes it
could not make, in order, and :meth:`Ledger.flush_held` (the worker's :class:`Flusher` thread,
and every later write) makes them when the server is back. The worker's lease is renewed
meanwhile by a thread of its own that never waits for a flush, so the reclaimer never takes back
what a live worker holds (:mod:`sms_worker.dispatch.lease`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import Connection, Engine

from sms_worker.clock import Clock
from sms_worker.db.bulk import FENCE, update_rows
from sms_worker.dispatch.batch import Batch
from sms_worker.dispatch.changes import WORKER_LOST, Change, change_of
from sms_worker.dispatch.sql import MESSAGES, add_events, lock_rows, update_each
from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.status import HELD_VALUES, WAITING, WAITING_VALUES, Status
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.queues.pointers import Due, schedule

log = get_logger("ledger")


@dataclass(slots=True)
class _Held:
    changes: list[Change]
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
        changes = [change for item in items if (change := change_of(item, now, self._first_check)) is not None]
        for item in items:
            item.written = True
        with self._lock:
            self._held.append(_Held(changes))
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

    def _commit(self, changes: list[Change]) -> list[Due]:
        """One transaction for the rows and their events; returns the pointers of what was written.

        The common case costs one fenced ``UPDATE`` per kind of change (executemany) and one
        ``INSERT`` of events. Only when a row moved on (a claim the sweep took back) is the write
        done again row by row under locks, sorting late answers out."""
        pointers = [change.pointer for change in changes if not change.values and change.pointer is not None]
        rows = [change for change in changes if change.values]
        if not rows:
            return pointers
        events = [note for change in rows for note in (change.started, change.event) if note]
        try:
            with self._engine.begin() as conn:
                if not _update_fenced(conn, rows):
                    raise _MovedOn
                add_events(conn, events)
            return pointers + [change.pointer for change in rows if change.pointer is not None]
        except _MovedOn:
            with self._engine.begin() as conn:
                return pointers + self._commit_row_by_row(conn, rows)

    def _commit_row_by_row(self, conn: Connection, rows: list[Change]) -> list[Due]:
        now = self._clock.now()
        updates, doubled, events, pointers = [], [], [], []
        if rows:
            current = lock_rows(conn, [change.id for change in rows], [*WAITING_VALUES, *HELD_VALUES, Status.UNKNOWN.value], now)
            for change in rows:
                row = current.get(change.id)
                if row is None:
                    continue
                if _ours(change, row):
                    updates.append({"id": change.id, **change.values})
                    events += [note for note in (change.started, change.event) if note]
                    pointers += [change.pointer] if change.pointer else []
                elif change.pointer is not None and not change.attempt and _waiting(row):
                    # A claim in doubt that was never taken: the row waits, with no pointer but this one.
                    pointers.append(change.pointer)
                elif change.attempt and row.claim_id != change.claim:
                    wins = change.accepted and row.claim_id is None and row.error_code == WORKER_LOST and row.attempts == change.attempt
                    if wins:
                        updates.append({"id": change.id, **change.values})
                    elif change.accepted:
                        doubled.append({"id": change.id, "possible_duplicate": True})
                    events += [change.started] if change.started else []
                    if change.event:
                        late = "late answer, after the sweep took the claim back: " + ("" if wins else "not applied: ")
                        if change.accepted and not wins:
                            late += "POSSIBLE DUPLICATE: the provider took this attempt though the message went on without it; "
                        events.append(
                            {**change.event, "status": change.values["status"] if wins else row.status, "reason": late + change.event["reason"]}
                        )
            update_each(conn, updates)
            update_each(conn, doubled)
            add_events(conn, events)
        return pointers


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


class _MovedOn(SmsWorkerError):
    """A fenced update found a row no longer as the change expected."""


def _update_fenced(conn: Connection, changes: list[Change]) -> bool:
    """Apply each change only if its row still names the change's claim, or, for a batch's own
    decision about a message it did not claim, is still waiting; True if every row was."""
    claimed = [{"id": change.id, FENCE: change.claim, **change.values} for change in changes if change.claim is not None]
    waiting = [{"id": change.id, **change.values} for change in changes if change.claim is None]
    statuses = ", ".join(f"'{status}'" for status in WAITING_VALUES)
    matched = update_rows(conn, MESSAGES, claimed, fence="claim_id") if claimed else 0
    matched += update_rows(conn, MESSAGES, waiting, where=f"claim_id IS NULL AND status IN ({statuses})") if waiting else 0
    return matched == len(changes)


def _waiting(row: Any) -> bool:
    return row.status in {s.value for s in WAITING} and row.claim_id is None


def _ours(change: Change, row: Any) -> bool:
    if change.claim is None:
        return _waiting(row)
    return row.claim_id == change.claim
