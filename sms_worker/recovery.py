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
  resent on the same account only, or ``unknown``: :mod:`sms_worker.lifecycle.ambiguity`). Staleness is
  watched by the reclaimer on its monotonic clock, counting no time when the database was away
  or the reclaimer itself was held up, so a live worker is never taken for dead after an outage.
- **A message still waiting after its validity ended** is expired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, delete, func, select

from sms_worker.dispatch.batch import Defer
from sms_worker.dispatch.changes import Pin, failed
from sms_worker.dispatch.policy import Attempt, RetryPolicy
from sms_worker.lifecycle.changes import Call, Expired, Requeued, TakenBack
from sms_worker.lifecycle.status import HELD_VALUES, WAITING_VALUES, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.write import expire, requeue
from sms_worker.logs import get_logger
from sms_worker.priority import Priority
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.queues import keys
from sms_worker.queues.pointers import Due, Pointer, enqueue, is_scheduled, ready_lengths
from sms_worker.redis_scripts import load_script
from sms_worker.runtime import Runtime
from sms_worker.workers.lease import DISPATCHERS
from sms_worker.workers.write_behind import Write

log = get_logger("recovery")
WORKER_LOST: Final = "WORKER_LOST"
"""The error code of an attempt whose worker died during the call (an ambiguous attempt)."""
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
        report.expired = len(expire(conn, Expired(now)))
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


_CLAIM_COLUMNS = (
    "id",
    "priority",
    "status",
    "claim_id",
    "account",
    "pinned_account",
    "attempts",
    "first_attempt_at",
    "last_attempt_at",
    "valid_until",
    "unsure_since",
    "on_ambiguous",
)
"""What taking back a held message needs of its row."""
RECLAIM_EVERY = 1.0
"""Seconds between the reclaimer's looks (the scheduler's loop calls :meth:`Reclaimer.tick`)."""
LONGEST_LOOK = 2 * RECLAIM_EVERY
"""The most that one look may count of the time since the last, and at most a quarter lease."""


@dataclass
class _Watched:
    """What the reclaimer knows of one dispatcher: the heartbeat it last saw (None: no lease row,
    though messages name it) and for how many watched seconds it has not moved."""

    heartbeat: datetime | None
    still_for: float = 0.0


class Reclaimer:
    """Takes back the claims of workers whose lease ran out; one per scheduler process.

    **Staleness is watched, never computed from a timestamp.** A lease is lost once this
    reclaimer has seen its heartbeat stand still for ``lease_seconds`` of *watched* time: the
    time between two of its looks that both reached the database, each look counting at most
    :data:`LONGEST_LOOK` seconds (and at most a quarter lease), on the clock's monotonic
    measure. So a database outage (no look reaches it) and a jump of the wall clock count for
    nothing, and a stall of the scheduler's own loop (a host starved of CPU) for one look at
    most: a live worker, which renews every fifth of a lease, is seen to renew before its lease
    is judged. Before, staleness was ``now - heartbeat_at`` on the wall clock, with a grace of
    one lease after an outage the reclaimer had seen itself: an outage it did not see (its loop
    held up meanwhile) had no grace at all. The heartbeat is compared only with itself, so the
    workers' clocks need not agree with the scheduler's.

    A restarted scheduler watches a whole lease before it takes anything back.
    """

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._policy = RetryPolicy.of(rt.settings, rt.accounts)
        self._watched: dict[str, _Watched] = {}
        self._looked: float | None = None
        self._counts_at_most = min(LONGEST_LOOK, rt.settings.lease_seconds / 4)

    def tick(self) -> ReclaimReport:
        """Call about every :data:`RECLAIM_EVERY` seconds. Raises if the database is away (and
        the time until its next successful look counts for nothing)."""
        rt = self._rt
        try:
            seen = self._look()
        except Exception:
            self._looked = None
            raise
        moment = rt.clock.monotonic()
        watched = 0.0 if self._looked is None else min(max(0.0, moment - self._looked), self._counts_at_most)
        self._looked = moment
        self._watched = {
            dispatcher: _Watched(heartbeat, before.still_for + watched if before is not None and before.heartbeat == heartbeat else 0.0)
            for dispatcher, heartbeat in seen.items()
            for before in [self._watched.get(dispatcher)]
        }
        lost = {dispatcher: w.heartbeat for dispatcher, w in self._watched.items() if w.still_for >= rt.settings.lease_seconds}
        if not lost:
            return ReclaimReport()
        now = rt.clock.now()
        claims = self._claims_of(lost)
        rt.write_behind.write([self._taken_back(row, now) for row in claims])
        calling = sum(row.status == Status.CALLING for row in claims)
        report = ReclaimReport(requeued=len(claims) - calling, ambiguous=calling)
        with rt.engine.begin() as conn:
            held = select(MESSAGES.c.id).where(MESSAGES.c.dispatcher == DISPATCHERS.c.id, MESSAGES.c.status.in_(HELD_VALUES)).exists()
            for dispatcher, heartbeat in lost.items():
                if heartbeat is not None:
                    conn.execute(delete(DISPATCHERS).where(DISPATCHERS.c.id == dispatcher, DISPATCHERS.c.heartbeat_at == heartbeat, ~held))
        if report.ambiguous:
            log.error("%d message(s) were in a provider call when their worker was lost: ambiguous attempts, decided like timeouts", report.ambiguous)
        if report.requeued:
            log.warning("%d claimed message(s) of a lost worker queued again (no provider call had started)", report.requeued)
        return report

    def _look(self) -> dict[str, datetime | None]:
        """Every lease's heartbeat, and the dispatchers named by held messages that have no lease
        (``""`` for none named), with None."""
        orphans = (
            select(MESSAGES.c.dispatcher)
            .distinct()
            .select_from(MESSAGES.outerjoin(DISPATCHERS, DISPATCHERS.c.id == MESSAGES.c.dispatcher))
            .where(MESSAGES.c.status.in_(HELD_VALUES), DISPATCHERS.c.id.is_(None))
        )
        with self._rt.engine.connect() as conn:
            seen: dict[str, datetime | None] = {
                row.id: row.heartbeat_at for row in conn.execute(select(DISPATCHERS.c.id, DISPATCHERS.c.heartbeat_at))
            }
            seen.update({dispatcher or "": None for dispatcher in conn.execute(orphans).scalars()})
        return seen

    def _claims_of(self, lost: dict[str, datetime | None]) -> list[Row[Any]]:
        """The held messages of the lost dispatchers whose heartbeat is still the one watched (a
        lease renewed since the look keeps its claims)."""
        columns: list[ColumnElement[Any]] = [MESSAGES.c[name] for name in _CLAIM_COLUMNS]
        columns += [MESSAGES.c.dispatcher.label("held_by"), DISPATCHERS.c.heartbeat_at.label("heartbeat")]
        statement = (
            select(*columns)
            .select_from(MESSAGES.outerjoin(DISPATCHERS, DISPATCHERS.c.id == MESSAGES.c.dispatcher))
            .where(MESSAGES.c.status.in_(HELD_VALUES), func.coalesce(MESSAGES.c.dispatcher, "").in_(list(lost)))
            .limit(_CHUNK)
        )
        with self._rt.engine.connect() as conn:
            return [row for row in conn.execute(statement) if lost.get(row.held_by or "", False) == row.heartbeat]

    def _taken_back(self, row: Row[Any], now: datetime) -> Write:
        """What taking back a lost worker's claim of ``row`` writes: a ``claimed`` message never
        reached a provider and waits again at once (no attempt counted); a ``calling`` one may
        have, and its call failed ambiguously (``WORKER_LOST``), decided by the retry policy."""
        pointer = Pointer(Priority(row.priority), row.id)
        if row.status == Status.CLAIMED:
            waiting = Status.RETRYING if row.attempts else Status.QUEUED
            reason = "worker lost before the provider call; queued again"
            return Write(TakenBack(id=row.id, claim=row.claim_id, at=now, reason=reason, status=waiting, until=now), Due(pointer, now))
        first = row.first_attempt_at or now
        started = row.last_attempt_at or first  # when the lost call was recorded as started
        lost = Failure(ErrorKind.AMBIGUOUS, WORKER_LOST, "worker lost during the provider call; the provider may have the message")
        pinned = row.pinned_account is not None
        attempt = Attempt(row.account, row.attempts, started, first, row.valid_until, pinned, row.unsure_since, row.on_ambiguous)
        decided = self._policy.after_failure(lost, attempt, now)
        change = failed(decided, row.id, row.claim_id, Call(row.attempts, started, None), now, Pin(row.account, pinned), row.first_attempt_at)
        return Write(change, Due(pointer, decided.until) if isinstance(decided, Defer) else None)


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
    again = [pointer for r in rows if not is_scheduled(rt.redis, pointer := Pointer(Priority(r.priority), r.id))]
    if again:
        with rt.engine.begin() as conn:
            requeue(conn, Requeued(tuple(pointer.message_id for pointer in again), now))
        enqueue(rt.redis, rt.waker, rt.settings.batch_size, again, [])
        log.warning("re-queued %d message(s) whose queue entry was lost", len(again))
    return len(again)
