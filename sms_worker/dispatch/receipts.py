"""Delivery receipts: poll the providers' check endpoints for submitted messages, and apply what
the poller or a callback brings.

A receipt never moves a message back (a late ``queued`` after ``sent``) nor out of a final
status. Several receipts for one message at once (a callback body may hold a list) all count,
applied in order of progress whatever their order in the body: ``delivered`` then ``sent``
ends delivered, with both in the history. A provider id reused after a provider restart names the
message attempted last, on the poller's path as on a callback's (:mod:`.holders`); the older
holder is not given its report. A word the adapter does not know changes nothing: it
is kept in ``provider_status`` and the history, and the message is still polled. A report that
ends a message failed (undeliverable, rejected, expired) writes its ``error_code`` (one per report:
:attr:`~sms_worker.lifecycle.status.Delivery.failure_code`) and an ``error_text`` naming the account and the
provider's word. Checks back off with the message's age, and a message with no final report long
after its validity ends is ``unknown`` (``NO_RECEIPT``).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select

from sms_worker.dispatch.holders import HOLDER_COLUMNS, Holder, holders
from sms_worker.lifecycle.changes import Note, Reported
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.write import Submitted, apply, lock_submitted
from sms_worker.logs import get_logger
from sms_worker.providers.base import DeliveryReceipt
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.pause import pause_for
from sms_worker.queues.pointers import ready_lengths
from sms_worker.runtime import Runtime

log = get_logger("receipts")
RECEIPT_TIMEOUT = timedelta(days=3)
PROVIDER_ID_REUSED: Final = "PROVIDER_ID_REUSED"
"""A status check whose answer is about a newer message holding the same provider id."""
CHECK_CRASH: Final = "CHECK_CRASH"
"""A status check whose adapter raised something other than a provider's failure (a bug)."""
NO_RECEIPT: Final = "NO_RECEIPT"
"""The error code of a message with no final report :data:`RECEIPT_TIMEOUT` after its validity ended."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a provider said of one of our messages: a receipt, or a check that failed."""

    message: Holder
    """The message it is about, as :func:`~sms_worker.dispatch.holders.holders` names it."""
    outcome: DeliveryReceipt | Failure


@dataclass
class PollReport:
    checked: int = 0
    changed: int = 0
    final: int = 0
    errors: int = 0


def poll_budget(rt: Runtime) -> float:
    """Sending comes first: while messages wait to be sent, one round of checks per poll;
    once none wait, rounds for up to half the interval, to catch up."""
    return 0.0 if any(ready_lengths(rt.redis).values()) else rt.settings.poll_interval_seconds / 2


def poll_statuses(rt: Runtime, limit: int = 200, budget_seconds: float = 0.0) -> PollReport:
    """Check the accepted messages whose next check is due, ``limit`` at a time, round after
    round while a full round was due and ``budget_seconds`` are not spent, so receipts keep up
    with a dispatch rate far above ``limit`` per poll interval."""
    total = PollReport()
    deadline = time.monotonic() + budget_seconds
    while True:
        report = _poll_round(rt, limit)
        for name in ("checked", "changed", "final", "errors"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.checked < limit or time.monotonic() >= deadline:
            return total


def _poll_round(rt: Runtime, limit: int) -> PollReport:
    now = rt.clock.now()
    statement = (
        select(*HOLDER_COLUMNS)
        .where(MESSAGES.c.status == Status.SUBMITTED.value, MESSAGES.c.next_check_at <= now)
        .order_by(MESSAGES.c.next_check_at)
        .limit(limit)
    )
    with rt.engine.connect() as conn:
        due = [Holder(*row) for row in conn.execute(statement)]
    futures = [rt.http_pool.submit(_check, rt, message) for message in due]
    wait(futures)
    results = [Report(message, future.result()) for message, future in zip(due, futures)]
    _pause_accounts(rt, results)
    return apply_receipts(rt, _to_holders(rt, results))


def _to_holders(rt: Runtime, results: list[Report]) -> list[Report]:
    """Each receipt to the message its id names now (:mod:`~sms_worker.dispatch.holders`): the
    message checked, unless a message attempted after it holds the same id (the provider reused
    it). Then the receipt is that newer message's, and the one checked is not given it: for it
    the check said nothing (``PROVIDER_ID_REUSED``), and it is checked again on its schedule."""
    by_account: dict[str, set[str]] = defaultdict(set)
    for result in results:
        if isinstance(result.outcome, DeliveryReceipt):
            by_account[result.message.account].add(result.message.provider_message_id)
    named: dict[tuple[str, str], Holder] = {}
    with rt.engine.connect() as conn:
        for account, provider_ids in by_account.items():
            named.update({(account, pid): holder for pid, holder in holders(conn, account, provider_ids, seen_in="status check").items()})
    retargeted: list[Report] = []
    for result in results:
        checked = result.message
        holder = named.get((checked.account, checked.provider_message_id)) if isinstance(result.outcome, DeliveryReceipt) else None
        if holder is None or holder.id == checked.id:
            retargeted.append(result)
            continue
        reused = (
            f"{checked.account} now holds {checked.provider_message_id!r} for a message attempted later ({holder.id}): its report is not this one's"
        )
        retargeted += [Report(holder, result.outcome), Report(checked, Failure(ErrorKind.PERMANENT, PROVIDER_ID_REUSED, reused))]
    return retargeted


def _pause_accounts(rt: Runtime, results: list[Report]) -> None:
    """An account-wide fault met by a status check (a revoked key, no funds) pauses the account
    as it would on a send, once per account and round."""
    wide = {r.message.account: r.outcome for r in results if isinstance(r.outcome, Failure) and r.outcome.pauses_account}
    for account, failure in wide.items():
        pause_for(rt.redis, account, failure)


def _check(rt: Runtime, message: Holder) -> DeliveryReceipt | Failure:
    try:
        return rt.accounts[message.account].adapter.check(message.provider_message_id)
    except ProviderError as error:
        return error.failure
    except Exception as error:
        log.exception("status check of %s at %s failed", message.id, message.account)
        return Failure(ErrorKind.TRANSIENT, CHECK_CRASH, f"{type(error).__name__}: {error}")


def apply_receipts(rt: Runtime, results: Sequence[Report]) -> PollReport:
    """Write the receipts (or the failed checks) the provider gave; callbacks go through here
    too. A message may come more than once, each of its receipts then applied in order of
    progress (:func:`_in_progress_order`). ``changed`` counts the receipts that moved a message
    on, ``final`` the messages that became final."""
    report = PollReport(checked=len(results))
    if not results:
        return report
    now = rt.clock.now()
    by_row: dict[uuid.UUID, tuple[Holder, list[DeliveryReceipt | Failure]]] = {}
    for result in results:
        by_row.setdefault(result.message.id, (result.message, []))[1].append(result.outcome)
    with rt.engine.begin() as conn:
        current = lock_submitted(conn, list(by_row), now)
        apply(
            conn, [_reported(rt, holder, current[holder.id], outcomes, now, report) for holder, outcomes in by_row.values() if holder.id in current]
        )
    return report


def _reported(rt: Runtime, row: Holder, was: Submitted, outcomes: list[DeliveryReceipt | Failure], now: datetime, report: PollReport) -> Reported:
    """What ``outcomes`` make of the message ``row``, found submitted as ``was`` (its ``status``,
    ``delivery`` and ``provider_status``); counted into ``report``."""
    status, delivery, provider_status = was.status, was.delivery.value if was.delivery else None, was.provider_status
    notes: list[Note] = []
    reached: Delivery | None = None
    word = delivered_at = code = error_text = None
    for outcome in _in_progress_order(outcomes):
        if status.final:
            break
        if isinstance(outcome, Failure):
            report.errors += 1
        elif outcome.delivery is None:
            if outcome.provider_status != provider_status:
                word = provider_status = outcome.provider_status
                reason = f"{row.account} reported {outcome.provider_status!r}, a word its adapter does not know: nothing changes, the message is still checked"
                notes.append(Note(now, Status.SUBMITTED, reason, provider_status=outcome.provider_status))
        elif outcome.delivery.value != delivery and outcome.delivery.progress >= _progress(delivery):
            reached, status, delivery, word = outcome.delivery, outcome.delivery.status, outcome.delivery.value, outcome.provider_status
            provider_status = word
            if reached is Delivery.DELIVERED:
                delivered_at = outcome.delivered_at or now
            reason, failure = f"{row.account} reports it {delivery}", reached.failure_code
            if failure is not None:
                reason = reached.failure_text(row.account, word, outcome.provider_error)
                code, error_text = failure, reason
            notes.append(Note(now, status, reason, failure, word))
            report.changed += 1
            report.final += status.final
    if not status.final and now > row.valid_until + RECEIPT_TIMEOUT:
        reason = f"no final report from {row.account} within {RECEIPT_TIMEOUT} after the validity ended"
        status, code, error_text = Status.UNKNOWN, NO_RECEIPT, reason
        notes.append(Note(now, status, reason, NO_RECEIPT))
        report.final += 1
    next_check = None if status.final else _next_check(rt, row, now)
    return Reported(row.id, status, next_check, tuple(notes), reached, word, delivered_at, code, error_text)


def _in_progress_order(outcomes: list[DeliveryReceipt | Failure]) -> list[DeliveryReceipt | Failure]:
    """Failed checks and words the adapter does not know first, then reports by progress (equals
    keep the order they came in), so a report never hides one that goes further."""
    return sorted(outcomes, key=lambda outcome: outcome.delivery.progress if isinstance(outcome, DeliveryReceipt) and outcome.delivery else -1)


def _progress(delivery: str | None) -> int:
    return Delivery(delivery).progress if delivery else 0


def _next_check(rt: Runtime, row: Holder, now: datetime) -> datetime:
    """Check often while a receipt is likely, then less and less."""
    age = (now - (row.last_attempt_at or now)).total_seconds()
    delays = rt.settings.status_check_delays_seconds
    elapsed = 0.0
    for delay in delays:
        elapsed += delay
        if age < elapsed:
            return now + timedelta(seconds=delay)
    return now + timedelta(seconds=delays[-1])
