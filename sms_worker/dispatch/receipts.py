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

**At scale** (:mod:`.checks`). A message of an account whose provider posts receipts
(``receipt_callbacks = true``) is first checked only once its receipt is overdue
(``SMS_WORKER_RECEIPT_OVERDUE_SECONDS``), so with callbacks working the poller hardly checks it.
Each round groups its due messages by account; an adapter that answers many statuses in one
request (:class:`~sms_worker.providers.base.ChecksMany`: Telefoon's listing) is asked for an
account's due messages at once, and those it did not find are checked one by one. Every account
has its own budget of check requests per second (:class:`~.checks.CheckBudget`); a message the
budget cannot pay for this round is not checked, its next check moved to when the budget has
room, one after another at the budget's rate, so an account over its budget neither loses a
message nor holds up another account's checks. Every answer, listed or checked alone, goes the
same way: :func:`_to_holders`, then :func:`apply_receipts`.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from sqlalchemy import select

from sms_worker.dispatch.checks import CheckBudget, CheckSchedule
from sms_worker.dispatch.holders import HOLDER_COLUMNS, Holder, holders
from sms_worker.lifecycle.changes import Note, Reported
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.write import Submitted, apply, lock_submitted
from sms_worker.logs import get_logger
from sms_worker.providers.base import ChecksMany, DeliveryReceipt, ManyChecked, StatusQuery
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.pause import pause_for
from sms_worker.queues.pointers import ready_lengths
from sms_worker.runtime import Runtime

log = get_logger("receipts")
_T = TypeVar("_T")
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
    deferred: int = 0
    """Due messages not checked this round: their account's check budget had no room; each
    one's next check was moved to when it will."""


MIN_LISTED: Final = 3
"""Due messages of one account from which a round asks an adapter that checks many at once
(:class:`~sms_worker.providers.base.ChecksMany`) instead of each alone: with two, a listing
(its total, then a page) costs what two checks do."""


@dataclass(frozen=True, slots=True)
class _Share:
    """One account's due messages in a round: those its budget pays for (``granted``, with the
    ``tokens`` taken), and those that wait (``waiting``, ``retry_after`` seconds until the next
    token, then one each ``1 / rate`` seconds)."""

    account: str
    granted: list[Holder]
    waiting: list[Holder]
    tokens: int
    retry_after: float
    rate: float


def poll_budget(rt: Runtime) -> float:
    """Sending comes first: while messages wait to be sent, one round of checks per poll;
    once none wait, rounds for up to half the interval, to catch up."""
    return 0.0 if any(ready_lengths(rt.redis).values()) else rt.settings.poll_interval_seconds / 2


def poll_statuses(rt: Runtime, limit: int = 200, budget_seconds: float = 0.0) -> PollReport:
    """Check the accepted messages whose next check is due, ``limit`` at a time, round after
    round while a full round was checked and ``budget_seconds`` are not spent, so receipts keep
    up with a dispatch rate far above ``limit`` per poll interval."""
    total = PollReport()
    deadline = time.monotonic() + budget_seconds
    while True:
        report = _poll_round(rt, limit)
        for name in ("checked", "changed", "final", "errors", "deferred"):
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
    by_account: dict[str, list[Holder]] = defaultdict(list)
    for message in due:
        by_account[message.account].append(message)
    budget = CheckBudget(rt.redis, rt.accounts, rt.settings.status_check_share, rt.settings.poll_interval_seconds)
    shares = [
        _share(budget, account, messages) if account in rt.accounts else _unbudgeted(account, messages) for account, messages in by_account.items()
    ]
    results, alone, waiting = _listed(rt, budget, shares)
    futures = [rt.http_pool.submit(_check, rt, message) for message in alone]
    wait(futures)
    results += [Report(message, future.result()) for message, future in zip(alone, futures)]
    _pause_accounts(rt, results)
    report = apply_receipts(rt, _to_holders(rt, results))
    report.deferred = _postpone(rt, waiting, now)
    return report


def _share(budget: CheckBudget, account: str, messages: list[Holder]) -> _Share:
    """What ``account``'s budget pays for of its due ``messages``, oldest due first."""
    grant = budget.take(account, len(messages))
    return _Share(account, messages[: grant.granted], messages[grant.granted :], grant.granted, grant.retry_after, budget.rate(account))


def _unbudgeted(account: str, messages: list[Holder]) -> _Share:
    """The due messages of an account the providers file no longer has: no budget to keep, and
    each check fails as before (``CHECK_CRASH``, logged), so the others' receipts go on."""
    return _Share(account, messages, [], len(messages), 0.0, 1.0)


def _listed(rt: Runtime, budget: CheckBudget, shares: list[_Share]) -> tuple[list[Report], list[Holder], list[_Share]]:
    """Ask each account that checks many at once for its granted messages, in parallel, in at
    most half the requests its budget granted (the rest is for what the listing does not show).
    Returns the reports it gave, the messages to check alone (every other account's, and those a
    listing did not find while its tokens last), and what waits for each account's budget."""
    asked = {
        share.account: rt.http_pool.submit(_check_many, rt, share.account, share.granted, max(MIN_LISTED - 1, share.tokens // 2))
        for share in shares
        if len(share.granted) >= MIN_LISTED and share.account in rt.accounts and isinstance(rt.accounts[share.account].adapter, ChecksMany)
    }
    wait(list(asked.values()))
    results: list[Report] = []
    alone: list[Holder] = []
    waiting: list[_Share] = []
    for share in shares:
        if share.account not in asked:
            alone += share.granted
            waiting.append(share)
            continue
        answer = asked[share.account].result()
        if isinstance(answer, Failure):
            results += [Report(message, answer) for message in share.granted]
            waiting.append(share)
            continue
        missed = [m for m in share.granted if m.provider_message_id not in answer.receipts]
        results += [Report(m, answer.receipts[m.provider_message_id]) for m in share.granted if m.provider_message_id in answer.receipts]
        room = max(0, share.tokens - answer.requests)
        alone += missed[:room]
        budget.give_back(share.account, room - len(missed[:room]))
        waiting.append(replace(share, waiting=missed[room:] + share.waiting))
    return results, alone, waiting


def _postpone(rt: Runtime, shares: list[_Share], now: datetime) -> int:
    """Move the next check of each message its budget could not pay for to when it can: the
    first ``retry_after`` from now (at least one token's time), each next one ``1 / rate``
    later, so the account's checks come at its budget's pace. (Each round counts from its own
    now, not from what an earlier round postponed: a backlog far above the budget is postponed
    again and again, and while it is due it can fill a round's ``limit`` before younger due
    messages of other accounts; they wait, never dropped.) Returns how many were moved."""
    moved: dict[uuid.UUID, datetime] = {}
    for share in shares:
        step = 1 / share.rate
        first = max(share.retry_after, step)
        moved.update({m.id: now + timedelta(seconds=first + n * step) for n, m in enumerate(share.waiting)})
    if not moved:
        return 0
    with rt.engine.begin() as conn:
        current = lock_submitted(conn, list(moved), now)
        apply(conn, [Reported(message_id, Status.SUBMITTED, moved[message_id], ()) for message_id in current])
    return len(moved)


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
    return _guarded(
        lambda: rt.accounts[message.account].adapter.check(message.provider_message_id), f"status check of {message.id} at {message.account}"
    )


def _check_many(rt: Runtime, account: str, messages: list[Holder], max_requests: int) -> ManyChecked | Failure:
    """``account``'s adapter (a :class:`~sms_worker.providers.base.ChecksMany`) asked for the
    receipts of ``messages`` in at most ``max_requests`` requests; a failure is every message's."""
    adapter = rt.accounts[account].adapter
    assert isinstance(adapter, ChecksMany)
    queries = [StatusQuery(m.provider_message_id, m.last_attempt_at) for m in messages]
    return _guarded(lambda: adapter.check_many(queries, max_requests), f"status check of {len(messages)} message(s) at {account}")


def _guarded(call: Callable[[], _T], what: str) -> _T | Failure:
    """``call()``, or the provider's failure it raised; anything else raised (a bug) is logged
    with ``what`` and is a transient failure (``CHECK_CRASH``), checked again later."""
    try:
        return call()
    except ProviderError as error:
        return error.failure
    except Exception as error:
        log.exception("%s failed", what)
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
    schedule = CheckSchedule.of(rt.settings, rt.accounts)
    by_row: dict[uuid.UUID, tuple[Holder, list[DeliveryReceipt | Failure]]] = {}
    for result in results:
        by_row.setdefault(result.message.id, (result.message, []))[1].append(result.outcome)
    with rt.engine.begin() as conn:
        current = lock_submitted(conn, list(by_row), now)
        apply(
            conn,
            [_reported(schedule, holder, current[holder.id], outcomes, now, report) for holder, outcomes in by_row.values() if holder.id in current],
        )
    return report


def _reported(
    schedule: CheckSchedule, row: Holder, was: Submitted, outcomes: list[DeliveryReceipt | Failure], now: datetime, report: PollReport
) -> Reported:
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
    next_check = None if status.final else schedule.next(row.account, row.last_attempt_at, now)
    return Reported(row.id, status, next_check, tuple(notes), reached, word, delivered_at, code, error_text)


def _in_progress_order(outcomes: list[DeliveryReceipt | Failure]) -> list[DeliveryReceipt | Failure]:
    """Failed checks and words the adapter does not know first, then reports by progress (equals
    keep the order they came in), so a report never hides one that goes further."""
    return sorted(outcomes, key=lambda outcome: outcome.delivery.progress if isinstance(outcome, DeliveryReceipt) and outcome.delivery else -1)


def _progress(delivery: str | None) -> int:
    return Delivery(delivery).progress if delivery else 0
