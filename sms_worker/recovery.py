"""Recovery: the database is the truth, Redis only a hint (Notify's lesson).

- **Redis lost its state** (flushed, or restarted without persistence): every pointer is rebuilt
  from the rows, once per flush: the first process to notice takes a short Redis lock and
  rebuilds, the others leave it to it (:func:`ensure_redis_state`).
- **A pointer was lost** (a worker died between pop and claim, a promoter between two writes):
  the row is queued again once nothing is left in its ready list to pick it up.
- **A worker died holding claims** (:class:`Reclaimer`, run every second by the scheduler):
  its lease stops being renewed, and once it is ``lease_seconds`` stale its messages are taken
  back. A ``claimed`` message never reached a provider and is queued again; a ``calling`` one
  may have, and is an ambiguous attempt, decided like a timeout by the retry policy (the
  account is asked first where its API can say, else the message's ``on_ambiguous`` decides:
  resent on the same account only, or ``unknown``: :mod:`sms_worker.ambiguity`). After the
  database was away, leases are judged only once it has been back for a whole lease, so a live
  worker that could not renew (and holds outcomes to write) is never taken for dead.
- **A message still waiting after its validity ended** is expired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, or_, select

from sms_worker.dispatch.batch import WAITING_COLUMNS, Batch, Defer, Item, Waiting
from sms_worker.dispatch.changes import WORKER_LOST
from sms_worker.dispatch.lease import DISPATCHERS
from sms_worker.dispatch.policy import Attempt, RetryPolicy
from sms_worker.dispatch.sql import MESSAGES, expire_unsent, update_each
from sms_worker.logs import get_logger
from sms_worker.priority import Priority
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.queues import keys
from sms_worker.queues.pointers import Due, Pointer, enqueue, is_scheduled, ready_lengths
from sms_worker.redis_scripts import load_script
from sms_worker.runtime import Runtime
from sms_worker.status import HELD_VALUES, WAITING_VALUES, Status

log = get_logger("recovery")
_CHUNK = 5000
REBUILD_LOCK_SECONDS = 120


@dataclass
class SweepReport:
    rebuilt: int = 0
    requeued: int = 0
    expired: int = 0


def sweep(rt: Runtime) -> SweepReport:
    report = SweepReport(rebuilt=ensure_redis_state(rt))
    now = rt.clock.now()
    with rt.engine.begin() as conn:
        report.expired = len(expire_unsent(conn, now))
    report.requeued = _requeue_lost_pointers(rt, now)
    if any(vars(report).values()):
        log.info("sweep: %s", report)
    return report


def ensure_redis_state(rt: Runtime) -> int:
    """Rebuild every pointer from the database when Redis has forgotten them; returns how many.

    A marker key, the epoch, says Redis still has its queues; a flush (or a restart without
    persistence) removes it with them. On a first start it is missing too, so the first sweep
    points at every waiting row once more: duplicates are harmless, the claim sends each message
    once. Whoever notices first rebuilds, under a lock; the others return 0.

    **Once per flush, under any interleaving.** Looking at the epoch and taking the lock were two
    commands: a process that saw the epoch missing, then was descheduled while another rebuilt,
    set the epoch and released the lock, took the free lock and rebuilt a second time (seen once
    in the suite: two rebuilds of 300). Now both steps are one Lua script each, so these rules
    hold whatever the timing: (1) the lock is taken only while the epoch is missing, in the same
    atomic step (``rebuild_begin.lua``); (2) a rebuild sets the epoch and releases the lock in
    one atomic step, and only while the lock is still its own (``rebuild_end.lua``). So a second
    process either tries while the first holds the lock (refused by ``NX``) or after it released
    it, when the epoch is there (refused by rule 1): only a new flush, which removes the epoch,
    allows another rebuild. If Redis is flushed during a rebuild, the lock goes with it, so by
    rule 2 the epoch is not set and the next process to notice rebuilds again: a rebuild that
    may have been cut short is never taken for complete. The one exception is a rebuild longer
    than the lock's life (``REBUILD_LOCK_SECONDS``): another may then rebuild beside it, which
    doubles pointers only, never a message.
    """
    token = uuid.uuid4().hex
    script_keys = [keys.EPOCH, keys.REBUILDING]
    if not load_script(rt.redis, "sms_worker.queues", "rebuild_begin.lua")(keys=script_keys, args=[token, REBUILD_LOCK_SECONDS]):
        return 0
    finished = False
    try:
        rt.waker.declare_queues()
        now = rt.clock.now()
        ready: list[Pointer] = []
        later: list[Due] = []
        statement = select(MESSAGES.c.id, MESSAGES.c.priority, MESSAGES.c.send_after).where(MESSAGES.c.status.in_(WAITING_VALUES))
        with rt.engine.connect() as conn:
            for row in conn.execute(statement.execution_options(yield_per=_CHUNK)):
                pointer = Pointer(Priority(row.priority), row.id)
                if row.send_after <= now:
                    ready.append(pointer)
                else:
                    later.append(Due(pointer, row.send_after))
        enqueue(rt.redis, rt.waker, rt.settings.batch_size, ready, later)
        finished = True
    finally:
        load_script(rt.redis, "sms_worker.queues", "rebuild_end.lua")(keys=script_keys, args=[token, int(finished)])
    if ready or later:
        log.warning("Redis had lost its queues: rebuilt %d ready and %d scheduled pointers from the database", len(ready), len(later))
    return len(ready) + len(later)


@dataclass
class ReclaimReport:
    requeued: int = 0
    ambiguous: int = 0


class Reclaimer:
    """Takes back the claims of workers whose lease ran out; one per scheduler process."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._policy = RetryPolicy.of(rt.settings, rt.accounts)
        self._up_since: datetime | None = None

    def tick(self) -> ReclaimReport:
        """Call about every second. Raises if the database is away (and starts counting again)."""
        rt = self._rt
        now = rt.clock.now()
        lease = timedelta(seconds=rt.settings.lease_seconds)
        try:
            rows = self._stale_claims(now - lease)
        except Exception:
            self._up_since = None
            raise
        if self._up_since is None:
            self._up_since = now
        if now - self._up_since < lease or not rows:
            return ReclaimReport()
        batch = Batch([self._item(row, now) for row in rows])
        rt.ledger.write(batch)
        report = ReclaimReport(requeued=sum(not item.called for item in batch), ambiguous=sum(item.called for item in batch))
        with rt.engine.begin() as conn:
            held = select(MESSAGES.c.id).where(MESSAGES.c.dispatcher == DISPATCHERS.c.id, MESSAGES.c.status.in_(HELD_VALUES)).exists()
            conn.execute(delete(DISPATCHERS).where(DISPATCHERS.c.heartbeat_at < now - lease, ~held))
        if report.ambiguous:
            log.error("%d message(s) were in a provider call when their worker was lost: ambiguous attempts, decided like timeouts", report.ambiguous)
        if report.requeued:
            log.warning("%d claimed message(s) of a lost worker queued again (no provider call had started)", report.requeued)
        return report

    def _stale_claims(self, stale_before: datetime) -> list[Row[Any]]:
        columns = [MESSAGES.c[name] for name in ("id", "priority", "status", "claim_id", "account", "last_attempt_at", *WAITING_COLUMNS)]
        statement = (
            select(*columns)
            .select_from(MESSAGES.outerjoin(DISPATCHERS, DISPATCHERS.c.id == MESSAGES.c.dispatcher))
            .where(MESSAGES.c.status.in_(HELD_VALUES), or_(DISPATCHERS.c.id.is_(None), and_(DISPATCHERS.c.heartbeat_at < stale_before)))
            .limit(_CHUNK)
        )
        with self._rt.engine.connect() as conn:
            return list(conn.execute(statement))

    def _item(self, row: Row[Any], now: datetime) -> Item:
        waiting = Status.RETRYING if row.attempts and row.status == Status.CLAIMED else Status.QUEUED
        item = Item(
            row.id,
            Priority(row.priority),
            Waiting.of(row, waiting),
            account=row.account,
            claim_id=row.claim_id,
        )
        if row.status == Status.CLAIMED:
            item.disposition = Defer(now, "worker lost before the provider call; queued again", waiting)
            return item
        item.attempt, item.first_attempt_at = row.attempts, row.first_attempt_at or now
        lost = Failure(ErrorKind.AMBIGUOUS, WORKER_LOST, "worker lost during the provider call; the provider may have the message")
        started = row.last_attempt_at or item.first_attempt_at  # when the lost call was recorded as started
        attempt = Attempt(row.account, row.attempts, started, item.first_attempt_at, row.valid_until, item.pinned, row.unsure_since, row.on_ambiguous)
        item.disposition = self._policy.after_failure(lost, attempt, now)
        return item


def _requeue_lost_pointers(rt: Runtime, now: datetime) -> int:
    """A due row with no pointer left to find it: queue it again (a duplicate pointer is harmless).

    Only priorities whose ready list has drained are searched: while a list still holds
    pointers, a row of that priority may simply be waiting its turn.
    """
    empty = [p for p, n in ready_lengths(rt.redis).items() if n == 0]
    if not empty:
        return 0
    stale_before = now - timedelta(seconds=rt.settings.stale_queued_seconds)
    statement = (
        select(MESSAGES.c.id, MESSAGES.c.priority)
        .where(
            MESSAGES.c.status.in_(WAITING_VALUES),
            MESSAGES.c.priority.in_(empty),
            MESSAGES.c.send_after <= stale_before,
            MESSAGES.c.updated_at <= stale_before,
        )
        .order_by(MESSAGES.c.send_after)
        .limit(_CHUNK)
    )
    with rt.engine.connect() as conn:
        rows = conn.execute(statement).all()
    requeue = [pointer for r in rows if not is_scheduled(rt.redis, pointer := Pointer(Priority(r.priority), r.id))]
    if requeue:
        with rt.engine.begin() as conn:
            update_each(conn, [{"id": pointer.message_id, "updated_at": now} for pointer in requeue])
        enqueue(rt.redis, rt.waker, rt.settings.batch_size, requeue, [])
        log.warning("re-queued %d message(s) whose queue entry was lost", len(requeue))
    return len(requeue)
