"""One dispatch batch: pop pointers, expire, rate-limit, claim, call providers, record.

The claim is one atomic ``UPDATE ... WHERE status IN (claimable) RETURNING``: a pointer that two
workers both popped (or that the sweep pushed twice) is sent once. What the provider call needs
is copied out and the transaction closed before any HTTP, so a slow provider holds no
connection. A message whose validity has passed is expired at claim time and never sent.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Hashable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update

from sms_worker.dispatch import inflight
from sms_worker.dispatch.retry import GiveUp, RetryPolicy
from sms_worker.dispatch.sql import MESSAGES, add_events, event, expire_unsent, lock_rows, update_each
from sms_worker.logs import get_logger, mask_numbers, mask_phone
from sms_worker.providers.base import Accepted, ErrorKind, OutboundMessage, ProviderError, SendOutcome
from sms_worker.providers.pause import pause, paused_reason
from sms_worker.queues.pointers import Pointer, keep_awake, pop_batch, pop_urgent, schedule
from sms_worker.ratelimit import TokenBucket
from sms_worker.routing.meter import count_sent
from sms_worker.runtime import Runtime
from sms_worker.status import CLAIMABLE_VALUES, Status

log = get_logger("dispatch")
PAUSE_RECHECK_SECONDS = 30
REQUEUE_AFTER_FAILURE_SECONDS = 5
IN_FLIGHT_TTL_FLOOR = 3600
URGENT_LOOK_INTERVAL = 0.01
RATE_LIMIT_LEAD_SECONDS = 0.1
SCHEDULE_TOLERANCE = timedelta(seconds=0.1)
WORKER_LOST = "WORKER_LOST"
NO_ROUTE = "NO_ROUTE"


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
    claim: str
    """Names this claim in its in-flight marker: a worker whose lease ran out can never take a
    later claim of the same message for its own."""
    priority: int
    provider: str
    attempts: int
    first_attempt_at: datetime
    valid_until: datetime
    outbound: OutboundMessage
    pinned: bool = False
    """The producer named the account: no failover to another."""


class ClaimLost:
    """The lease sweep took this claim back before the call started: the call was skipped."""


@dataclass
class _Plan:
    expired: list[uuid.UUID] = field(default_factory=list)
    window_over: list[uuid.UUID] = field(default_factory=list)
    not_due: list[tuple[int, str, float]] = field(default_factory=list)
    sendable: list[dict[str, Any]] = field(default_factory=list)
    unroutable: dict[uuid.UUID, str] = field(default_factory=dict)
    """Messages no configured account may carry (sender or destination rules), with the reason."""


def dispatch_batch(rt: Runtime) -> BatchReport:
    """Take the most urgent pointers and see each to its next status.

    A full batch means more may be waiting: other workers are woken at once, not after it."""
    pointers = pop_batch(rt.redis, rt.settings.batch_size, rt.settings.standard_share, rt.settings.low_share)
    if len(pointers) >= rt.settings.batch_size:
        keep_awake(rt.redis, rt.waker, rt.settings.batch_size)
    return dispatch_pointers(rt, pointers)


def dispatch_pointers(rt: Runtime, pointers: list[Pointer]) -> BatchReport:
    report = BatchReport(popped=len(pointers))
    if not pointers:
        return report
    claimed = _prepare_or_reschedule(rt, pointers, report)
    results, calls = _send_all(rt, claimed, report)
    _record_health(rt, results, calls)
    _record(rt, results, report)
    return report


def _prepare_or_reschedule(rt: Runtime, pointers: list[Pointer], report: BatchReport) -> list[Claimed]:
    """Claim what can be sent; if anything fails before the claim, the pointers are not lost."""
    try:
        return _prepare(rt, pointers, report)
    except Exception:
        retry_at = rt.clock.now().timestamp() + REQUEUE_AFTER_FAILURE_SECONDS
        schedule(rt.redis, [(priority, message_hex, retry_at) for priority, message_hex in pointers])
        log.exception("dispatch failed before any claim; %d pointer(s) rescheduled", len(pointers))
        raise


def _prepare(rt: Runtime, pointers: list[Pointer], report: BatchReport) -> list[Claimed]:
    now = rt.clock.now()
    ids = list(dict.fromkeys(uuid.UUID(hex=message_hex) for _, message_hex in pointers))
    plan = _plan(rt, ids, now)
    report.skipped += len(ids) - len(plan.expired) - len(plan.window_over) - len(plan.not_due) - len(plan.sendable)
    routed, deferred, probes = _route(rt, plan, now)
    if plan.expired or plan.window_over or plan.unroutable:
        with rt.engine.begin() as conn:
            report.expired += len(expire_unsent(conn, now, plan.expired)) if plan.expired else 0
            report.failed += _give_up_after_window(conn, plan.window_over, now, rt)
            report.failed += _refuse_unroutable(conn, plan.unroutable, now)
    granted, limited = _apply_rate_limits(rt, routed, now)
    for account in probes - {item["provider"] for item in granted}:
        rt.breaker(account).release_probe()
    deferred += limited + plan.not_due
    if deferred:
        schedule(rt.redis, deferred)
    report.deferred += len(deferred)
    return _claim(rt, granted, now)


def _plan(rt: Runtime, ids: list[uuid.UUID], now: datetime) -> _Plan:
    columns = (MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.provider_message_id, MESSAGES.c.requested_provider, MESSAGES.c.segments,
               MESSAGES.c.priority, MESSAGES.c.send_after, MESSAGES.c.valid_until, MESSAGES.c.first_attempt_at,
               MESSAGES.c.recipient, MESSAGES.c.sender, MESSAGES.c.attempts)
    with rt.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(*columns).where(MESSAGES.c.id.in_(ids)))}
    window = timedelta(seconds=rt.settings.retry_window_seconds)
    plan = _Plan()
    for message_id in ids:
        row = rows.get(message_id)
        if row is None or row.status not in CLAIMABLE_VALUES or row.provider_message_id is not None:
            continue
        if row.valid_until <= now:
            plan.expired.append(message_id)
        elif row.status == Status.ERROR.value and row.first_attempt_at is not None and now > row.first_attempt_at + window:
            plan.window_over.append(message_id)
        elif row.send_after > now + SCHEDULE_TOLERANCE:
            plan.not_due.append((row.priority, message_id.hex, row.send_after.timestamp()))
        else:
            plan.sendable.append({"id": message_id, "requested": row.requested_provider, "segments": row.segments,
                                  "priority": row.priority, "recipient": row.recipient, "sender": row.sender, "attempts": row.attempts})
    return plan


def _route(rt: Runtime, plan: _Plan, now: datetime) -> tuple[list[dict[str, Any]], list[tuple[int, str, float]], set[str]]:
    """Give each sendable message the first of its accounts that is in routing and may carry it.

    A retry starts one further down the list than the attempt before, so a message that met a
    transient fault tries the next account even before the first one's breaker opens. An
    account is out of routing while paused (an account-wide fault) or while its breaker is
    open; a half-open breaker takes one probe message (the accounts probed are returned). A
    message that named its account waits for it; one that no account could ever carry is refused."""
    capacity: dict[str, int] = {}
    probes: set[str] = set()

    def available(name: str) -> bool:
        if name not in capacity:
            capacity[name] = 0 if paused_reason(rt.redis, name) is not None else rt.breaker(name).admit()
            if capacity[name] == 1:
                probes.add(name)
        if capacity[name] == 0:
            return False
        capacity[name] -= capacity[name] > 0
        return True

    routed: list[dict[str, Any]] = []
    waiting: list[tuple[int, str, float]] = []
    recheck = now.timestamp() + min(PAUSE_RECHECK_SECONDS, rt.settings.breaker_cooldown_seconds)
    for item in plan.sendable:
        names = [item["requested"]] if item["requested"] else rt.router.candidates(item["recipient"], item["id"].bytes)
        turn = item["attempts"] % len(names)
        names = names[turn:] + names[:turn]
        if item["requested"] and item["requested"] not in rt.accounts:
            plan.unroutable[item["id"]] = f"it names account {item['requested']!r}, which is not configured ({', '.join(sorted(rt.accounts))})"
            continue
        allowed = [name for name in names if rt.router.refusal(name, item["recipient"], item["sender"]) is None]
        if not allowed:
            plan.unroutable[item["id"]] = rt.router.refusal(names[0], item["recipient"], item["sender"]) or "no account"
            continue
        chosen = next((name for name in allowed if available(name)), None)
        if chosen is None:
            waiting.append((item["priority"], item["id"].hex, recheck))
            continue
        routed.append({**item, "provider": chosen})
    return routed, waiting, probes


def _refuse_unroutable(conn: Any, refused: dict[uuid.UUID, str], now: datetime) -> int:
    if not refused:
        return 0
    rows = conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(list(refused)), MESSAGES.c.status.in_(CLAIMABLE_VALUES), MESSAGES.c.provider_message_id.is_(None))
        .values(status=Status.DENIED.value, error_code=NO_ROUTE, updated_at=now)
        .returning(MESSAGES.c.id)
    ).scalars().all()
    update_each(conn, [{"id": i, "error_text": refused[i]} for i in rows])
    add_events(conn, [event(i, now, Status.DENIED.value, f"no account may carry it: {refused[i]}", NO_ROUTE) for i in rows])
    return len(rows)


def _give_up_after_window(conn: Any, ids: list[uuid.UUID], now: datetime, rt: Runtime) -> int:
    """A retry that comes due after the retry window (a stopped scheduler, a long pause) is not sent."""
    if not ids:
        return 0
    reason = f"retry window of {rt.settings.retry_window_seconds} s since the first attempt is over"
    given_up = conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(ids), MESSAGES.c.status == Status.ERROR.value, MESSAGES.c.provider_message_id.is_(None))
        .values(status=Status.UNDELIVERABLE.value, error_text=reason, updated_at=now)
        .returning(MESSAGES.c.id)
    ).scalars().all()
    add_events(conn, [event(i, now, Status.UNDELIVERABLE.value, reason) for i in given_up])
    return len(given_up)


def _apply_rate_limits(rt: Runtime, sendable: list[dict[str, Any]], now: datetime) -> tuple[list[dict[str, Any]], list[tuple[int, str, float]]]:
    """Grant what each account's bucket allows now; the rest waits in the due set, not in a worker."""
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in sendable:
        by_provider[item["provider"]].append(item)
    granted: list[dict[str, Any]] = []
    deferred: list[tuple[int, str, float]] = []
    for provider, items in by_provider.items():
        account = rt.accounts[provider]
        costs = [i["segments"] if rt.settings.rate_limit_unit == "parts" else 1 for i in items]
        bucket = TokenBucket(rt.redis, provider, account.rate, account.burst, rt.settings.rate_limit_headroom_seconds)
        grant = bucket.acquire(costs)
        granted += items[: grant.granted]
        deferred += [(i["priority"], i["id"].hex, _token_due(now, grant.retry_after, n, account.rate)) for n, i in enumerate(items[grant.granted :])]
    return granted, deferred


def _token_due(now: datetime, retry_after: float, position: int, rate: float) -> float:
    """When the ``position``-th waiting message should be back: a little before its token, so
    demand is already queued when the token comes (a token not taken when the bucket is full
    is lost, and the provider's rate with it). One that comes back too early waits again."""
    return now.timestamp() + max(0.0, retry_after + position / rate - RATE_LIMIT_LEAD_SECONDS)


_CLAIM_COLUMNS = [MESSAGES.c[name] for name in ("id", "recipient", "sender", "text", "priority", "provider", "attempts",
                                                 "first_attempt_at", "valid_until", "unicode", "flash", "requested_provider")]


def _claim(rt: Runtime, granted: list[dict[str, Any]], now: datetime) -> list[Claimed]:
    """One statement for the whole batch, each row taking the account it was routed to: two
    workers claiming overlapping batches lock rows in one statement each, never crosswise."""
    if not granted:
        return []
    lease_until = now + timedelta(seconds=rt.settings.lease_seconds)
    accounts = {item["id"]: item["provider"] for item in granted}
    provider = next(iter(accounts.values())) if len(set(accounts.values())) == 1 else case(accounts, value=MESSAGES.c.id)
    statement = (
        update(MESSAGES)
        .where(
            MESSAGES.c.id.in_(list(accounts)),
            MESSAGES.c.status.in_(CLAIMABLE_VALUES),
            MESSAGES.c.provider_message_id.is_(None),
            MESSAGES.c.valid_until > now,
            MESSAGES.c.send_after <= now + SCHEDULE_TOLERANCE,
        )
        .values(
            status=Status.PROCESSING.value,
            provider=provider,
            attempts=MESSAGES.c.attempts + 1,
            first_attempt_at=func.coalesce(MESSAGES.c.first_attempt_at, now),
            last_attempt_at=now,
            lease_until=lease_until,
            updated_at=now,
        )
        .returning(*_CLAIM_COLUMNS)
    )
    with rt.engine.begin() as conn:
        rows = conn.execute(statement).all()
        add_events(conn, [event(r.id, now, Status.PROCESSING.value, f"claimed for attempt {r.attempts} via {r.provider}") for r in rows])
    claim = uuid.uuid4().hex
    inflight.mark_claimed(rt.redis, [row.id for row in rows], claim, max(IN_FLIGHT_TTL_FLOOR, rt.settings.lease_seconds * 10))
    order = {g["id"]: n for n, g in enumerate(granted)}
    return sorted((_claimed(row, claim, now) for row in rows), key=lambda c: order[c.id])


def _claimed(row: Any, claim: str, now: datetime) -> Claimed:
    remaining = max(1, min(1440, math.ceil((row.valid_until - now).total_seconds() / 60)))
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
    return Claimed(row.id, claim, row.priority, row.provider, row.attempts, row.first_attempt_at or now, row.valid_until, outbound,
                   pinned=row.requested_provider is not None)


Outcome = Accepted | ProviderError | ClaimLost
Unit = list[Claimed]
"""Messages that travel in one HTTP request: one, or several where the API takes a list."""


def _units(rt: Runtime, claimed: list[Claimed]) -> list[Unit]:
    units: list[Unit] = []
    open_units: dict[tuple[str, Hashable], Unit] = {}
    for item in claimed:
        provider = rt.accounts[item.provider].provider
        if provider.max_recipients <= 1:
            units.append([item])
            continue
        key = (item.provider, provider.group_key(item.outbound))
        unit = open_units.get(key)
        if unit is None or len(unit) >= provider.max_recipients:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(item)
    return units


def _send_all(rt: Runtime, claimed: list[Claimed], report: BatchReport) -> tuple[list[tuple[Claimed, Outcome]], list[tuple[str, SendOutcome]]]:
    """Keep up to ``http_concurrency`` requests in flight. Free slots are refilled once half of
    them are free (one Redis round trip marks a group's calls), or sooner if a slot has been
    free for a moment, so slow calls never hold up the rest.

    A batch popped while no high message waited also takes high messages that arrive meanwhile
    (up to a batch of them) and sends them next, so a high message never waits out a low batch.
    A batch that already holds high messages does not: that is a high backlog, and the fair
    shares apply.

    Returns each message's outcome, and each request's: (account, an accepted outcome if any
    message of it was accepted, else its first error), which is what the breakers count.
    """
    limit = rt.settings.http_concurrency
    group = max(1, limit // 2)
    waiting = deque(_units(rt, claimed))
    running: dict[Future, Unit] = {}
    results: list[tuple[Claimed, Outcome]] = []
    calls: list[tuple[str, SendOutcome]] = []

    def finished(future: Future) -> None:
        unit, outcomes = running.pop(future), future.result()
        results.extend(zip(unit, outcomes))
        calls.append((unit[0].provider, next((o for o in outcomes if isinstance(o, Accepted)), outcomes[0])))

    urgent_left = 0 if any(item.priority == 3 for item in claimed) else rt.settings.batch_size
    next_look = last_refill = 0.0
    while waiting or running:
        now = time.monotonic()
        if urgent_left and now >= next_look:
            next_look = now + URGENT_LOOK_INTERVAL
            urgent_left = _take_urgent(rt, waiting, urgent_left, report)
        free = limit - len(running)
        if waiting and free and (free >= group or now - last_refill >= URGENT_LOOK_INTERVAL or len(waiting) < group):
            last_refill = now
            if not _start(rt, [waiting.popleft() for _ in range(min(free, len(waiting)))], running, results):
                break
        if running:
            done, _ = wait(running, timeout=URGENT_LOOK_INTERVAL, return_when=FIRST_COMPLETED)
            for future in done:
                finished(future)
    for future in list(running):
        finished(future)
    return results, calls


def _take_urgent(rt: Runtime, waiting: deque[Unit], urgent_left: int, report: BatchReport) -> int:
    """Put newly arrived high messages at the front; a failure here ends the look-out, not the batch."""
    try:
        urgent = pop_urgent(rt.redis, min(urgent_left, rt.settings.http_concurrency))
        report.popped += len(urgent)
        if urgent:
            waiting.extendleft(reversed(_units(rt, _prepare_or_reschedule(rt, urgent, report))))
        return urgent_left - len(urgent)
    except Exception:  # noqa: BLE001 - the batch's own calls must still be seen through
        log.exception("taking newly arrived high messages failed; this batch stops looking for them")
        return 0


def _start(rt: Runtime, units: list[Unit], running: dict[Future, Unit], results: list[tuple[Claimed, Outcome]]) -> bool:
    """Mark the calls as started and submit them. If Redis cannot mark them, nothing more is
    started: the calls in flight are seen through, and the lease sweep re-queues the rest."""
    items = [item for unit in units for item in unit]
    try:
        allowed = dict(zip((item.id for item in items), inflight.start_calls(rt.redis, [(item.id, item.claim) for item in items])))
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not mark %d call(s) as started; leaving them to the lease sweep", len(items))
        return False
    for unit in units:
        results += [(item, ClaimLost()) for item in unit if not allowed[item.id]]
        calling = [item for item in unit if allowed[item.id]]
        if calling:
            running[rt.http_pool.submit(_call_provider, rt, calling)] = calling
    return True


def _call_provider(rt: Runtime, unit: Unit) -> list[SendOutcome]:
    """One request's outcomes, one per message: whatever happens, never an exception."""
    provider = rt.accounts[unit[0].provider].provider
    try:
        if len(unit) == 1:
            return [provider.send(unit[0].outbound)]
        outcomes = provider.send_many([item.outbound for item in unit])
        if len(outcomes) != len(unit):
            raise RuntimeError(f"send_many answered {len(outcomes)} outcomes for {len(unit)} messages")
        return outcomes
    except ProviderError as error:
        return [error] * len(unit)
    except Exception as error:  # noqa: BLE001 - an adapter bug must not kill the batch or the worker
        log.exception("adapter %s crashed sending %d message(s), first to %s", unit[0].provider, len(unit), mask_phone(unit[0].outbound.recipient))
        return [ProviderError(ErrorKind.TRANSIENT, "ADAPTER_CRASH", f"{type(error).__name__}: {error}")] * len(unit)


def _record_health(rt: Runtime, results: list[tuple[Claimed, Outcome]], calls: list[tuple[str, SendOutcome]]) -> None:
    """Feed each account's breaker, one outcome per request: a transient fault counts against
    the account, anything else (an accepted message, a permanent refusal) for it."""
    failures: dict[str, list[bool]] = defaultdict(list)
    last_fault: dict[str, str] = {}
    for account, outcome in calls:
        failed = isinstance(outcome, ProviderError) and outcome.kind is ErrorKind.TRANSIENT
        failures[account].append(failed)
        if failed:
            last_fault[account] = mask_numbers(f"{outcome.code}: {outcome.text}")[:200]
    accepted: dict[str, int] = defaultdict(int)
    for item, outcome in results:
        accepted[item.provider] += isinstance(outcome, Accepted)
    try:
        count_sent(rt.redis, {account: n for account, n in accepted.items() if n})
        changes = [(account, *rt.breaker(account).record(outcomes, last_fault.get(account, ""))) for account, outcomes in failures.items()]
    except Exception:  # noqa: BLE001 - health bookkeeping must not lose the batch's results
        log.exception("could not record the accounts' health for this batch")
        return
    for account, state, changed in changes:
        if changed and state == "open":
            log.error("circuit breaker OPEN for account %s after %s; routing passes it over for %.0f s",
                      account, last_fault.get(account, "transient faults"), rt.settings.breaker_cooldown_seconds)
        elif changed:
            log.warning("circuit breaker for account %s is %s again", account, state)


def _record(rt: Runtime, results: list[tuple[Claimed, Outcome]], report: BatchReport) -> None:
    answered = [(item, outcome) for item, outcome in results if not isinstance(outcome, ClaimLost)]
    if not answered:
        return
    try:
        written = _write_outcomes(rt, answered, report)
    except Exception:
        accepted = {str(item.id): o.provider_message_id for item, o in answered if isinstance(o, Accepted)}
        log.error("could not record a batch; the lease sweep will mark it UNKNOWN. Accepted by providers: %s", accepted)
        raise
    inflight.clear(rt.redis, written)


def _write_outcomes(rt: Runtime, answered: list[tuple[Claimed, Accepted | ProviderError]], report: BatchReport) -> list[uuid.UUID]:
    """Write each answer to the row it belongs to; returns the ids written."""
    now = rt.clock.now()
    policy = RetryPolicy.from_settings(rt.settings)
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    retries: list[tuple[int, str, float]] = []
    with rt.engine.begin() as conn:
        current = lock_rows(conn, [item.id for item, _ in answered], [Status.PROCESSING.value, Status.UNKNOWN.value], now)
        for item, outcome in answered:
            row = current.get(item.id)
            if row is None or row.attempts != item.attempts or (row.status == Status.UNKNOWN.value and row.error_code != WORKER_LOST):
                continue
            late = "late answer after the sweep gave up on this worker; " if row.status == Status.UNKNOWN.value else ""
            if isinstance(outcome, Accepted):
                report.accepted += 1
                updates.append(_accepted_row(rt, item, outcome, now))
                events.append(event(item.id, now, outcome.status.value, f"{late}accepted by {item.provider} as {outcome.provider_message_id}", outcome.provider_status))
                continue
            change, note, retry_at = _failure_row(rt, policy, item, outcome, now)
            updates.append(change)
            events.append(event(item.id, now, change["status"], late + note, outcome.code))
            if retry_at is not None:
                retries.append((item.priority, item.id.hex, retry_at.timestamp()))
                report.retrying += change["status"] == Status.ERROR.value
            else:
                report.failed += 1
        update_each(conn, updates)
        add_events(conn, events)
    if retries:
        schedule(rt.redis, retries)
    return [change["id"] for change in updates]


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
        reason = mask_numbers(f"{error.code}: {error.text}")
        pause(rt.redis, item.provider, reason)
        log.error("provider account %s PAUSED: %s. Its messages fail over to other accounts (or wait, if they named it); `sms-worker providers resume %s` once it is fixed",
                  item.provider, reason, item.provider)
        retry_at = now + timedelta(seconds=PAUSE_RECHECK_SECONDS if item.pinned else 0)
        uncounted = item.attempts - 1
        row = {**base, "status": Status.UNSENT.value, "attempts": uncounted, "send_after": retry_at}
        if uncounted == 0:
            row["first_attempt_at"] = None
        return row, f"account {item.provider} paused ({reason}); attempt not counted", retry_at
    if error.kind is ErrorKind.PERMANENT:
        log.info("message %s to %s failed permanently: %s", item.id, mask_phone(item.outbound.recipient), mask_numbers(str(error)))
        return {**base, "status": error.status.value}, f"permanent failure: {error.code}: {error.text}", None
    if error.ambiguous and rt.settings.retry_ambiguous == "never":
        note = f"{error.code}: {error.text}; {item.provider} may have the message, so it is not sent again"
        return {**base, "status": Status.UNKNOWN.value, "error_text": note}, note, None
    decision = policy.after_transient_failure(attempts=item.attempts, first_attempt_at=item.first_attempt_at, now=now, valid_until=item.valid_until)
    if isinstance(decision, GiveUp):
        note = f"{decision.reason}; last error {error.code}: {error.text}"
        return {**base, "status": decision.status.value, "error_text": note}, note, None
    row = {**base, "status": Status.ERROR.value, "send_after": decision.at}
    note = f"transient failure {error.code}: {error.text}; retry {item.attempts} at {decision.at.isoformat()}"
    if error.ambiguous and not item.pinned:
        row["requested_provider"] = item.provider
        note += f" via {item.provider} only: it may have the message, and another account would send it twice"
    return row, note, decision.at
