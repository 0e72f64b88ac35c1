"""Recovery sweeps: the database is the truth, Redis only a hint (Notify's lesson).

- Redis lost its state (flushed, or restarted without persistence): every pointer is rebuilt
  from the rows.
- A pointer was lost (a worker died between pop and claim, a promoter between two writes):
  the row is queued again once nothing is left in its ready list to pick it up.
- A worker died holding a claim: when the lease runs out, a message whose provider call never
  started is queued again; one whose call was in flight may have reached the provider, so it is
  marked ``UNKNOWN`` with that reason rather than sent twice or dropped in silence.
- A message still waiting after its validity ended is expired.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from sms_worker.clock import as_utc
from sms_worker.dispatch.sql import MESSAGES, add_events, event, lock_rows, update_each
from sms_worker.logs import get_logger
from sms_worker.queues import keys
from sms_worker.queues.pointers import is_scheduled, push_ready, ready_lengths, schedule
from sms_worker.runtime import Runtime
from sms_worker.status import CLAIMABLE, Status

log = get_logger("recovery")
CLAIMABLE_VALUES = sorted(s.value for s in CLAIMABLE)
_CHUNK = 5000


@dataclass
class SweepReport:
    rebuilt: int = 0
    requeued: int = 0
    leases_requeued: int = 0
    leases_unknown: int = 0
    expired: int = 0


def sweep(rt: Runtime) -> SweepReport:
    report = SweepReport(rebuilt=ensure_redis_state(rt))
    now = rt.clock.now()
    report.expired = _expire_waiting(rt, now)
    report.leases_requeued, report.leases_unknown = _resolve_expired_leases(rt, now)
    report.requeued = _requeue_lost_pointers(rt, now)
    if any(vars(report).values()):
        log.info("sweep: %s", report)
    return report


def ensure_redis_state(rt: Runtime) -> int:
    """Rebuild every pointer from the database when Redis has forgotten them; returns how many."""
    if rt.redis.exists(keys.EPOCH):
        return 0
    rt.waker.declare_queues()
    now = rt.clock.now()
    ready: list[tuple[int, str]] = []
    later: list[tuple[int, str, float]] = []
    statement = select(MESSAGES.c.id, MESSAGES.c.priority, MESSAGES.c.send_after).where(
        MESSAGES.c.status.in_(CLAIMABLE_VALUES), MESSAGES.c.provider_message_id.is_(None)
    )
    with rt.engine.connect() as conn:
        for row in conn.execute(statement.execution_options(yield_per=_CHUNK)):
            send_after = as_utc(row.send_after)
            if send_after <= now:
                ready.append((row.priority, row.id.hex))
            else:
                later.append((row.priority, row.id.hex, send_after.timestamp()))
    _enqueue(rt, ready, later)
    rt.redis.set(keys.EPOCH, uuid.uuid4().hex)
    if ready or later:
        log.warning("Redis had lost its queues: rebuilt %d ready and %d scheduled pointers from the database", len(ready), len(later))
    return len(ready) + len(later)


def _enqueue(rt: Runtime, ready: list[tuple[int, str]], later: list[tuple[int, str, float]]) -> None:
    if later:
        schedule(rt.redis, later)
    if ready:
        counts = push_ready(rt.redis, ready)
        rt.waker.wake({p: math.ceil(n / rt.settings.batch_size) for p, n in counts.items()})


def _expire_waiting(rt: Runtime, now: datetime) -> int:
    with rt.engine.begin() as conn:
        expired = conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.status.in_(CLAIMABLE_VALUES), MESSAGES.c.provider_message_id.is_(None), MESSAGES.c.valid_until <= now)
            .values(status=Status.EXPIRED.value, error_code="VALIDITY_EXPIRED", error_text="validity ended before it could be sent", updated_at=now)
            .returning(MESSAGES.c.id)
        ).scalars().all()
        add_events(conn, [event(i, now, Status.EXPIRED.value, "validity ended while waiting; never sent") for i in expired])
    return len(expired)


def _resolve_expired_leases(rt: Runtime, now: datetime) -> tuple[int, int]:
    statement = select(MESSAGES.c.id, MESSAGES.c.priority, MESSAGES.c.attempts).where(
        MESSAGES.c.status == Status.PROCESSING.value, MESSAGES.c.provider_message_id.is_(None), MESSAGES.c.lease_until < now
    )
    with rt.engine.connect() as conn:
        stale = conn.execute(statement).all()
    if not stale:
        return 0, 0
    with rt.redis.pipeline(transaction=False) as pipe:
        for row in stale:
            pipe.exists(keys.in_flight(row.id.hex))
        in_flight = dict(zip((row.id for row in stale), pipe.execute()))
    updates, events, requeue = [], [], []
    with rt.engine.begin() as conn:
        ours = lock_rows(conn, [row.id for row in stale], [Status.PROCESSING.value], now)
        for row in stale:
            if row.id not in ours:
                continue
            if in_flight[row.id]:
                reason = "worker lost during the provider call; the provider may have it, so it is not sent again"
                updates.append({"id": row.id, "status": Status.UNKNOWN.value, "lease_until": None, "error_code": "WORKER_LOST", "error_text": reason})
                events.append(event(row.id, now, Status.UNKNOWN.value, reason))
            else:
                updates.append({"id": row.id, "status": Status.UNSENT.value, "lease_until": None, "attempts": max(0, row.attempts - 1), "send_after": now})
                events.append(event(row.id, now, Status.UNSENT.value, "worker lost before the provider call; queued again"))
                requeue.append((row.priority, row.id.hex))
        update_each(conn, updates)
        add_events(conn, events)
    _enqueue(rt, requeue, [])
    if len(updates) > len(requeue):
        log.error("%d message(s) marked UNKNOWN: their worker died during the provider call", len(updates) - len(requeue))
    return len(requeue), len(updates) - len(requeue)


def _requeue_lost_pointers(rt: Runtime, now: datetime) -> int:
    """A due row with no pointer left to find it: queue it again (a duplicate pointer is harmless)."""
    stale_before = now - timedelta(seconds=rt.settings.stale_queued_seconds)
    empty = [p for p, n in ready_lengths(rt.redis).items() if n == 0]
    statement = select(MESSAGES.c.id, MESSAGES.c.priority, MESSAGES.c.status).where(
        MESSAGES.c.status.in_(CLAIMABLE_VALUES),
        MESSAGES.c.provider_message_id.is_(None),
        MESSAGES.c.send_after <= stale_before,
        MESSAGES.c.updated_at <= stale_before,
    ).limit(_CHUNK)
    with rt.engine.connect() as conn:
        rows = conn.execute(statement).all()
    requeue = [(r.priority, r.id.hex) for r in rows if r.priority in empty and not is_scheduled(rt.redis, r.priority, r.id.hex)]
    if requeue:
        with rt.engine.begin() as conn:
            update_each(conn, [{"id": uuid.UUID(hex=h), "updated_at": now} for _, h in requeue])
        _enqueue(rt, requeue, [])
        log.warning("re-queued %d message(s) whose queue entry was lost", len(requeue))
    return len(requeue)
