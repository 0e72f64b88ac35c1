"""Recovery sweeps: the database is the truth, Redis only a hint (Notify's lesson).

- Redis lost its state (flushed, or restarted without persistence): every pointer is rebuilt
  from the rows.
- A pointer was lost (a worker died between pop and claim, a promoter between two writes):
  the row is queued again once nothing is left in its ready list to pick it up.
- A claim whose lease ran out (its worker died, or hung): if the provider call had not started,
  the message is queued again; if it had, the provider may have the message, so it is marked
  ``UNKNOWN`` with that reason rather than sent twice or dropped in silence (see ``inflight``).
- A message still waiting after its validity ended is expired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from sms_worker.dispatch import inflight
from sms_worker.dispatch.service import WORKER_LOST
from sms_worker.dispatch.sql import MESSAGES, add_events, event, expire_unsent, lock_rows, update_each
from sms_worker.logs import get_logger
from sms_worker.queues import keys
from sms_worker.queues.pointers import enqueue, is_scheduled, ready_lengths
from sms_worker.runtime import Runtime
from sms_worker.status import CLAIMABLE_VALUES, Status

log = get_logger("recovery")
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
    with rt.engine.begin() as conn:
        report.expired = len(expire_unsent(conn, now))
    report.leases_requeued, report.leases_unknown = _resolve_expired_leases(rt, now)
    report.requeued = _requeue_lost_pointers(rt, now)
    if any(vars(report).values()):
        log.info("sweep: %s", report)
    return report


def ensure_redis_state(rt: Runtime) -> int:
    """Rebuild every pointer from the database when Redis has forgotten them; returns how many.

    A marker key says Redis still has its state. On a first start it is missing too, so the
    first sweep points at every waiting row once more: duplicates are harmless, the claim
    sends each message once.
    """
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
            if row.send_after <= now:
                ready.append((row.priority, row.id.hex))
            else:
                later.append((row.priority, row.id.hex, row.send_after.timestamp()))
    enqueue(rt.redis, rt.waker, rt.settings.batch_size, ready, later)
    rt.redis.set(keys.EPOCH, uuid.uuid4().hex)
    if ready or later:
        log.warning("Redis had lost its queues: rebuilt %d ready and %d scheduled pointers from the database", len(ready), len(later))
    return len(ready) + len(later)


def _resolve_expired_leases(rt: Runtime, now: datetime) -> tuple[int, int]:
    expired_lease = (MESSAGES.c.provider_message_id.is_(None), MESSAGES.c.lease_until < now)
    statement = select(MESSAGES.c.id).where(MESSAGES.c.status == Status.PROCESSING.value, *expired_lease).limit(_CHUNK)
    with rt.engine.connect() as conn:
        stale = list(conn.execute(statement).scalars())
    if not stale:
        return 0, 0
    updates, events = [], []
    with rt.engine.begin() as conn:
        ours = lock_rows(conn, stale, [Status.PROCESSING.value], now, *expired_lease)
        calling = inflight.take_unless_calling(rt.redis, list(ours))
        for message_id, row in ours.items():
            if calling[message_id]:
                reason = "worker lost during the provider call; the provider may have it, so it is not sent again"
                updates.append({"id": message_id, "status": Status.UNKNOWN.value, "lease_until": None, "error_code": WORKER_LOST, "error_text": reason})
                events.append(event(message_id, now, Status.UNKNOWN.value, reason))
                continue
            uncounted = max(0, row.attempts - 1)
            change = {"id": message_id, "status": Status.UNSENT.value, "lease_until": None, "attempts": uncounted, "send_after": now}
            if uncounted == 0:
                change["first_attempt_at"] = None
            updates.append(change)
            events.append(event(message_id, now, Status.UNSENT.value, "worker lost before the provider call; queued again"))
        update_each(conn, updates)
        add_events(conn, events)
    priorities = _priorities(rt, [c["id"] for c in updates if c["status"] == Status.UNSENT.value])
    requeue = [(priorities[i], i.hex) for i in priorities]
    enqueue(rt.redis, rt.waker, rt.settings.batch_size, requeue, [])
    unknown = len(updates) - len(requeue)
    if unknown:
        log.error("%d message(s) marked UNKNOWN: their worker was lost during the provider call", unknown)
    return len(requeue), unknown


def _priorities(rt: Runtime, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    with rt.engine.connect() as conn:
        return dict(conn.execute(select(MESSAGES.c.id, MESSAGES.c.priority).where(MESSAGES.c.id.in_(ids))).all())


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
            MESSAGES.c.status.in_(CLAIMABLE_VALUES),
            MESSAGES.c.provider_message_id.is_(None),
            MESSAGES.c.priority.in_(empty),
            MESSAGES.c.send_after <= stale_before,
            MESSAGES.c.updated_at <= stale_before,
        )
        .order_by(MESSAGES.c.send_after)
        .limit(_CHUNK)
    )
    with rt.engine.connect() as conn:
        rows = conn.execute(statement).all()
    requeue = [(r.priority, r.id.hex) for r in rows if not is_scheduled(rt.redis, r.priority, r.id.hex)]
    if requeue:
        with rt.engine.begin() as conn:
            update_each(conn, [{"id": uuid.UUID(hex=h), "updated_at": now} for _, h in requeue])
        enqueue(rt.redis, rt.waker, rt.settings.batch_size, requeue, [])
        log.warning("re-queued %d message(s) whose queue entry was lost", len(requeue))
    return len(requeue)
