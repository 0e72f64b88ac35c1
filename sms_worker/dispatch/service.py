"""One dispatch batch: pop pointers, expire, rate-limit, claim, call providers, record.

The claim is one atomic ``UPDATE ... WHERE status IN (claimable) RETURNING``: a pointer that two
workers both popped (or that the sweep pushed twice) is sent once. What the provider call needs
is copied out and the transaction closed before any HTTP, so a slow provider holds no
connection. A message whose validity has passed is expired at claim time and never sent.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from concurrent.futures import wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from sms_worker.clock import as_utc
from sms_worker.dispatch.retry import GiveUp, RetryPolicy
from sms_worker.dispatch.sql import MESSAGES, add_events, event, lock_rows, update_each
from sms_worker.logs import get_logger, mask_phone
from sms_worker.providers.base import Accepted, ErrorKind, OutboundMessage, ProviderError
from sms_worker.queues import keys
from sms_worker.queues.pointers import Pointer, pop_batch, schedule
from sms_worker.ratelimit import TokenBucket
from sms_worker.runtime import Runtime
from sms_worker.status import CLAIMABLE, Status

log = get_logger("dispatch")
CLAIMABLE_VALUES = sorted(s.value for s in CLAIMABLE)
PAUSE_RECHECK_SECONDS = 30
IN_FLIGHT_TTL_FLOOR = 3600


@dataclass
class BatchReport:
    popped: int = 0
    skipped: int = 0
    expired: int = 0
    deferred: int = 0
    accepted: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    priority: int
    provider: str
    attempts: int
    first_attempt_at: datetime
    valid_until: datetime
    outbound: OutboundMessage


@dataclass
class _Plan:
    expired: list[uuid.UUID] = field(default_factory=list)
    not_due: list[tuple[int, str, float]] = field(default_factory=list)
    sendable: list[dict[str, Any]] = field(default_factory=list)


def dispatch_batch(rt: Runtime) -> BatchReport:
    """Take the most urgent pointers and see each to its next status."""
    pointers = pop_batch(rt.redis, rt.settings.batch_size, rt.settings.standard_share, rt.settings.low_share)
    return dispatch_pointers(rt, pointers)


def dispatch_pointers(rt: Runtime, pointers: list[Pointer]) -> BatchReport:
    report = BatchReport(popped=len(pointers))
    if not pointers:
        return report
    now = rt.clock.now()
    ids = list(dict.fromkeys(uuid.UUID(hex=message_hex) for _, message_hex in pointers))
    plan = _plan(rt, ids, now)
    report.skipped = len(ids) - len(plan.expired) - len(plan.not_due) - len(plan.sendable)
    report.expired = _expire(rt, plan.expired, now)
    if plan.not_due:
        schedule(rt.redis, plan.not_due)
    granted, deferred = _apply_rate_limits(rt, plan.sendable, now)
    if deferred:
        schedule(rt.redis, deferred)
    report.deferred = len(deferred) + len(plan.not_due)
    claimed = _claim(rt, granted, now)
    results = _send_all(rt, claimed)
    _record(rt, results, report)
    return report


def _plan(rt: Runtime, ids: list[uuid.UUID], now: datetime) -> _Plan:
    columns = (MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.provider_message_id, MESSAGES.c.provider, MESSAGES.c.segments,
               MESSAGES.c.priority, MESSAGES.c.send_after, MESSAGES.c.valid_until)
    with rt.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(*columns).where(MESSAGES.c.id.in_(ids)))}
    plan = _Plan()
    for message_id in ids:
        row = rows.get(message_id)
        if row is None or row.status not in CLAIMABLE_VALUES or row.provider_message_id is not None:
            continue
        if as_utc(row.valid_until) <= now:
            plan.expired.append(message_id)
        elif as_utc(row.send_after) > now + timedelta(seconds=1):
            plan.not_due.append((row.priority, message_id.hex, as_utc(row.send_after).timestamp()))
        else:
            plan.sendable.append({"id": message_id, "provider": row.provider, "segments": row.segments, "priority": row.priority})
    return plan


def _expire(rt: Runtime, ids: list[uuid.UUID], now: datetime) -> int:
    if not ids:
        return 0
    with rt.engine.begin() as conn:
        expired = conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id.in_(ids), MESSAGES.c.status.in_(CLAIMABLE_VALUES), MESSAGES.c.provider_message_id.is_(None))
            .values(status=Status.EXPIRED.value, error_code="VALIDITY_EXPIRED", error_text="validity ended before it could be sent", updated_at=now)
            .returning(MESSAGES.c.id)
        ).scalars().all()
        add_events(conn, [event(i, now, Status.EXPIRED.value, "validity ended before it could be sent; never sent") for i in expired])
    return len(expired)


def _apply_rate_limits(rt: Runtime, sendable: list[dict[str, Any]], now: datetime) -> tuple[list[dict[str, Any]], list[tuple[int, str, float]]]:
    """Grant what each account's bucket allows now; the rest waits in the due set, not in a worker."""
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in sendable:
        by_provider[item["provider"]].append(item)
    granted: list[dict[str, Any]] = []
    deferred: list[tuple[int, str, float]] = []
    for provider, items in by_provider.items():
        account = rt.accounts[provider]
        pause = rt.redis.get(keys.paused(provider))
        if pause is not None:
            deferred += [(i["priority"], i["id"].hex, now.timestamp() + PAUSE_RECHECK_SECONDS) for i in items]
            continue
        costs = [i["segments"] if rt.settings.rate_limit_unit == "parts" else 1 for i in items]
        grant = TokenBucket(rt.redis, provider, account.rate, account.burst).acquire(costs)
        granted += items[: grant.granted]
        waiting = items[grant.granted :]
        spacing = 1.0 / account.rate
        deferred += [(i["priority"], i["id"].hex, now.timestamp() + grant.retry_after + n * spacing) for n, i in enumerate(waiting)]
    return granted, deferred


def _claim(rt: Runtime, granted: list[dict[str, Any]], now: datetime) -> list[Claimed]:
    if not granted:
        return []
    lease_until = now + timedelta(seconds=rt.settings.lease_seconds)
    statement = (
        update(MESSAGES)
        .where(
            MESSAGES.c.id.in_([g["id"] for g in granted]),
            MESSAGES.c.status.in_(CLAIMABLE_VALUES),
            MESSAGES.c.provider_message_id.is_(None),
            MESSAGES.c.valid_until > now,
        )
        .values(
            status=Status.PROCESSING.value,
            attempts=MESSAGES.c.attempts + 1,
            first_attempt_at=func.coalesce(MESSAGES.c.first_attempt_at, now),
            last_attempt_at=now,
            lease_until=lease_until,
            updated_at=now,
        )
        .returning(*MESSAGES.c)
    )
    with rt.engine.begin() as conn:
        rows = conn.execute(statement).all()
        add_events(conn, [event(r.id, now, Status.PROCESSING.value, f"claimed for attempt {r.attempts}") for r in rows])
    order = {g["id"]: n for n, g in enumerate(granted)}
    return sorted((_claimed(row, now) for row in rows), key=lambda c: order[c.id])


def _claimed(row: Any, now: datetime) -> Claimed:
    valid_until = as_utc(row.valid_until)
    remaining = max(1, min(1440, math.ceil((valid_until - now).total_seconds() / 60)))
    outbound = OutboundMessage(
        message_id=row.id.hex,
        recipient=row.recipient,
        text=row.text,
        sender=row.sender,
        priority=row.priority,
        validity_minutes=remaining,
        unicode=row.unicode,
        flash=row.flash,
    )
    first = as_utc(row.first_attempt_at) if row.first_attempt_at else now
    return Claimed(row.id, row.priority, row.provider, row.attempts, first, valid_until, outbound)


def _send_all(rt: Runtime, claimed: list[Claimed]) -> list[tuple[Claimed, Accepted | ProviderError]]:
    futures = [rt.http_pool.submit(_send_one, rt, item) for item in claimed]
    wait(futures)
    return [(item, future.result()) for item, future in zip(claimed, futures)]


def _send_one(rt: Runtime, item: Claimed) -> Accepted | ProviderError:
    ttl = max(IN_FLIGHT_TTL_FLOOR, rt.settings.lease_seconds * 10)
    rt.redis.set(keys.in_flight(item.id.hex), 1, ex=ttl)
    try:
        return rt.accounts[item.provider].provider.send(item.outbound)
    except ProviderError as error:
        return error
    except Exception as error:  # noqa: BLE001 - an adapter bug must not kill the batch or the worker
        log.exception("adapter %s crashed sending %s to %s", item.provider, item.id, mask_phone(item.outbound.recipient))
        return ProviderError(ErrorKind.TRANSIENT, "ADAPTER_CRASH", f"{type(error).__name__}: {error}")


def _record(rt: Runtime, results: list[tuple[Claimed, Accepted | ProviderError]], report: BatchReport) -> None:
    if not results:
        return
    now = rt.clock.now()
    policy = RetryPolicy.from_settings(rt.settings)
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    retries: list[tuple[int, str, float]] = []
    with rt.engine.begin() as conn:
        ours = lock_rows(conn, [c.id for c, _ in results], [Status.PROCESSING.value], now)
        for item, outcome in results:
            if item.id not in ours:
                continue
            if isinstance(outcome, Accepted):
                report.accepted += 1
                updates.append(_accepted_row(rt, item, outcome, now))
                events.append(event(item.id, now, outcome.status.value, f"accepted by {item.provider} as {outcome.provider_message_id}", outcome.provider_status))
            else:
                row, note, retry_at = _failure_row(rt, policy, item, outcome, now)
                updates.append(row)
                events.append(event(item.id, now, row["status"], note, outcome.code))
                if retry_at is not None:
                    retries.append((item.priority, item.id.hex, retry_at.timestamp()))
                    report.retrying += row["status"] == Status.ERROR.value
                else:
                    report.failed += 1
        update_each(conn, updates)
        add_events(conn, events)
    if retries:
        schedule(rt.redis, retries)
    rt.redis.delete(*(keys.in_flight(c.id.hex) for c, _ in results))


def _accepted_row(rt: Runtime, item: Claimed, accepted: Accepted, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": accepted.status.value,
        "provider_status": accepted.provider_status,
        "provider_message_id": accepted.provider_message_id,
        "lease_until": None,
        "next_check_at": now + timedelta(seconds=rt.settings.status_check_delays_seconds[0]),
        "error_code": None,
        "error_text": None,
    }


def _failure_row(rt: Runtime, policy: RetryPolicy, item: Claimed, error: ProviderError, now: datetime) -> tuple[dict[str, Any], str, datetime | None]:
    """What a failed attempt leads to: a retry, a pause of the account, or a final status."""
    base = {"id": item.id, "lease_until": None, "error_code": error.code, "error_text": error.text}
    if error.kind is ErrorKind.PERMANENT and error.account_wide:
        reason = f"{error.code}: {error.text}"
        rt.redis.set(keys.paused(item.provider), reason)
        log.error("provider account %s paused: %s; its messages stay queued until an operator resumes it", item.provider, reason)
        retry_at = now + timedelta(seconds=PAUSE_RECHECK_SECONDS)
        row = {**base, "status": Status.UNSENT.value, "attempts": item.attempts - 1, "send_after": retry_at}
        return row, f"account {item.provider} paused ({reason}); attempt not counted", retry_at
    if error.kind is ErrorKind.PERMANENT:
        log.info("message %s to %s failed permanently: %s", item.id, mask_phone(item.outbound.recipient), error)
        return {**base, "status": error.status.value}, f"permanent failure: {error.code}: {error.text}", None
    decision = policy.after_transient_failure(attempts=item.attempts, first_attempt_at=item.first_attempt_at, now=now, valid_until=item.valid_until)
    if isinstance(decision, GiveUp):
        note = f"{decision.reason}; last error {error.code}: {error.text}"
        return {**base, "status": decision.status.value, "error_text": note}, note, None
    row = {**base, "status": Status.ERROR.value, "send_after": decision.at}
    return row, f"transient failure {error.code}: {error.text}; retry {item.attempts} at {decision.at.isoformat()}", decision.at
