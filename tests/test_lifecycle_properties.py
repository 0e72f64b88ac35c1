"""The message's lifecycle (:mod:`sms_worker.lifecycle`) under random sequences of changes, on
SQLite and PostgreSQL (issue 17, "what must be shown").

A hypothesis state machine plays workers, the reclaimer, the sweep, the validity stage and the
receipts against two messages, through the package's public functions only: claims, calls
started (again, as a retry of a statement whose answer was lost, or under a claim taken back),
questions to the provider (absent, a near match, a copy found and adopted, a failure), outcomes
decided as the record stage and the retry policy decide them, claims taken back by the
reclaimer, expiry, receipts (twice, or before the acceptance is written), and changes the
transition table refuses. A worker's outcome goes to an outbox; any entry of it may be written,
in any order, any number of times (a ledger that replays a write whose commit answer was lost),
alone or in a batch with another message's, as the dispatch ledger writes it: :func:`apply`, and
on :class:`MovedOn` :func:`apply_each` in a new transaction. Some writes are made with a fault
armed: a trigger that fails the insert of a history line, in the middle of the transaction.

The test keeps its own model of each row (status, claim, attempts, times, unsure, possible
duplicate, provider id, report, number of history lines) from what the package documents, and
after every step the rows must be the model's, and these must hold:

- **A final status never changes**, but for the one documented exception: a late acceptance of
  the call the reclaimer took the claim back from, while nothing happened since, turns
  ``unknown`` (the reclaimer's guess) into what the provider said. Late answers may only add to
  the history (and set ``possible_duplicate``), as :mod:`sms_worker.lifecycle.write` documents.
- **Attempts never exceed 1 + max_retries** of the retry policy.
- **possible_duplicate** is set exactly when (a) an acceptance is written of a call made while an
  earlier attempt was unsure and the provider could not be asked, (b) a call was started after
  asking the provider (its listing had no copy, which proves nothing of a request it handles
  late, or a near match), and not put back as a call not made, or (c) an acceptance came late, after the claim was taken back, for a message
  that went on without that call (an attempt started since, or it was put back otherwise) and is
  still waiting, held or ``unknown``: the provider took an attempt the message no longer waited
  for (one already submitted or otherwise final is left alone, history and all). Nothing else
  sets it, and nothing but (b)'s call not made clears it.
- **Every change is applied whole or not at all**: a write that fails in the middle (the fault),
  a batch refused by the fence (:class:`MovedOn`) and a change refused by the transition table
  (:class:`TransitionRefused`) leave every row and every history line as they were.

``make test`` runs the fast profile (derandomized); ``HYPOTHESIS_PROFILE=long`` runs many more
and longer sequences, each run with new random ones.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import DBAPIError

from sms_worker.db.engine import get_engine
from sms_worker.dispatch.batch import Defer
from sms_worker.dispatch.changes import Pin, failed
from sms_worker.dispatch.policy import AccountPolicy, Attempt, RetryPolicy
from sms_worker.lifecycle.calls import CallRecord
from sms_worker.lifecycle.changes import (
    Accepted,
    Adopted,
    Attempted,
    Call,
    CallNotMade,
    CallStarted,
    Claimed,
    Created,
    DispatchChange,
    Ended,
    Expired,
    Failed,
    GivenBack,
    LostAttempt,
    Note,
    Reported,
    Requeued,
    TakenBack,
    Then,
    Uncounted,
)
from sms_worker.lifecycle.status import FINAL, WAITING, Delivery, Status
from sms_worker.lifecycle.tables import EVENTS, MESSAGES
from sms_worker.lifecycle.transitions import TransitionRefused
from sms_worker.lifecycle.write import MovedOn, adopt, apply, apply_each, claim, expire, insert, lock_submitted, requeue
from sms_worker.priority import Priority
from sms_worker.providers.failures import ErrorKind, Failure

settings.register_profile(
    "fast",
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "long",
    max_examples=1000,
    stateful_step_count=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fast")
if PROFILE not in ("fast", "long"):
    PROFILE = "fast"

ACCOUNT = "telekom-sk"
MAX_RETRIES = 2
START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
LOOKUP_FAILED = "LOOKUP_FAILED"
WORKER_LOST = "WORKER_LOST"
LATE_TARGET = WAITING | {Status.UNKNOWN}
"""Where a late acceptance may still win (the row was taken back and nothing happened since)."""
FAILURES = {
    "transient": Failure(ErrorKind.TRANSIENT, "HTTP_503", "service unavailable"),
    "ambiguous": Failure(ErrorKind.AMBIGUOUS, "TIMEOUT", "no answer in time"),
    "permanent": Failure(ErrorKind.PERMANENT, "INVALID_NUMBER", "invalid number", status=Status.REJECTED),
    "account": Failure(ErrorKind.PERMANENT, "BAD_KEY", "key refused", account_wide=True),
}
WAITS = st.sampled_from([0, 1, 30, 150, 700, 4000])
"""Seconds that pass before a step (retries are 30 and 120 s apart, validity 10 min or 3 h)."""
OUTCOMES = [*FAILURES, "accepted", "delivered at once", "rejected at once", "not made"]
FIRST_WORDS = {"accepted": None, "delivered at once": Delivery.DELIVERED, "rejected at once": Delivery.REJECTED}


# The model


@dataclass
class Row:
    """What a message's row must be, by the model."""

    id: uuid.UUID
    valid_until: datetime
    send_after: datetime
    status: Status = Status.QUEUED
    claim: uuid.UUID | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    unsure_since: datetime | None = None
    possible_duplicate: bool = False
    provider_message_id: str | None = None
    delivery: Delivery | None = None
    events: int = 1

    def seen(self) -> tuple[Any, ...]:
        return (
            self.status.value,
            self.claim,
            self.attempts,
            self.first_attempt_at,
            self.last_attempt_at,
            self.unsure_since,
            self.possible_duplicate,
            self.provider_message_id,
            self.delivery.value if self.delivery else None,
            self.send_after,
            self.events,
        )


@dataclass
class Handle:
    """A worker's claim of one message, and what it saw of the row when it claimed it."""

    claim: uuid.UUID
    message: int
    seen: Row
    lost: LostAttempt = LostAttempt.KEPT
    call: Call | None = None
    done: bool = False
    """Its outcome is decided (or the claim given back, or the message ended)."""


@dataclass
class Outcome:
    """A change someone decided, waiting to be written (and written again: a replay)."""

    change: DispatchChange
    message: int
    writes: int = 0


@dataclass
class Verdict:
    """What writing one ledger change does, by the model."""

    applied: bool = False
    late_win: bool = False
    notes: int = 0

    def told(self) -> str:
        if self.applied:
            return "applied"
        if self.late_win:
            return "late, won"
        return "late, noted" if self.notes else "dropped"


HELD_SOURCE = {
    Accepted: {Status.CLAIMED, Status.CALLING},
    Failed: {Status.CALLING},
    CallNotMade: {Status.CALLING},
    GivenBack: {Status.CLAIMED, Status.CALLING},
    TakenBack: {Status.CLAIMED},
    Ended: {Status.CLAIMED},
}
"""The statuses a change under a claim may find the row in (the documented table)."""


def _source(change: DispatchChange) -> set[Status]:
    return set(WAITING) if change.claim is None else HELD_SOURCE[type(change)]


def _own_notes(change: DispatchChange) -> int:
    """History lines a change adds when it is applied: its call's line, if it has one, and its own
    (but for a claim given back unused)."""
    call = 1 if change.call is not None and change.call.note is not None else 0
    return call + (0 if isinstance(change, GivenBack) and not change.noted else 1)


def verdict(row: Row, change: DispatchChange) -> Verdict:
    """Write ``change`` to the model's ``row``, as the ledger writes it (see the module docstring)."""
    if row.claim == change.claim and row.status in _source(change):
        _write(row, change)
        return Verdict(applied=True, notes=_own_notes(change))
    lockable = _source(change) | LATE_TARGET
    if change.call is None or row.status not in lockable:
        return Verdict()
    late = Verdict(notes=_own_notes(change))
    if isinstance(change, Accepted):
        call = change.call
        nothing_since = row.claim is None and row.status in LATE_TARGET
        nothing_since = nothing_since and (row.attempts, row.last_attempt_at) == (call.attempt, call.started_at)
        if nothing_since:
            _write(row, change)
            late.late_win = True
            return late
        row.possible_duplicate = True
    row.events += late.notes
    return late


def _write(row: Row, change: DispatchChange) -> None:
    row.status = change.status
    row.claim = None
    row.events += _own_notes(change)
    if isinstance(change, Failed | CallNotMade | GivenBack) and change.until is not None:
        row.send_after = change.until
    if isinstance(change, Accepted):
        row.provider_message_id = change.provider_message_id
        row.delivery = change.delivery
        row.possible_duplicate = row.possible_duplicate or change.possible_duplicate
        return
    if isinstance(change, Failed | CallNotMade):
        if change.uncounted is not None:
            row.attempts, row.first_attempt_at = change.uncounted.attempts, change.uncounted.first_attempt_at
        if change.unsure_since is not None:
            row.unsure_since = change.unsure_since
    if isinstance(change, CallNotMade) and change.possible_duplicate is not None:
        row.possible_duplicate = change.possible_duplicate


# The machine


class Lifecycle(RuleBasedStateMachine):
    """Two messages, their claims, outcomes and receipts; see the module docstring."""

    engine: Engine

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as conn:
            conn.execute(delete(EVENTS))
            conn.execute(delete(MESSAGES))
        self.now = START
        self.rows: list[Row] = []
        self.handles: list[Handle] = []
        self.outbox: list[Outcome] = []
        self.finals: dict[int, Status] = {}
        self.record = CallRecord(self.engine)
        self.late_wins: set[int] = set()
        self.copies = 0
        self.policy = RetryPolicy()

    def teardown(self) -> None:
        self.record.close()

    # Setting up

    @initialize(
        validity=st.sampled_from([timedelta(minutes=10), timedelta(hours=3)]),
        asks=st.booleans(),
        on_ambiguous=st.sampled_from(["resend", "give-up"]),
    )
    def create(self, validity: timedelta, asks: bool, on_ambiguous: str) -> None:
        self.asks = asks
        self.policy = RetryPolicy(
            max_retries=MAX_RETRIES,
            window=timedelta(hours=1),
            backoff_seconds=(30, 120),
            on_ambiguous=on_ambiguous,
            accounts={ACCOUNT: AccountPolicy(on_ambiguous, asks)},
        )
        created = [
            Created(
                id=uuid.uuid4(),
                recipient="+421900000990",
                sender=None,
                text="the same text",
                encoding="gsm7",
                segments=1,
                priority=Priority.STANDARD,
                account=ACCOUNT,
                requested_account=None,
                status=Status.QUEUED,
                unicode=None,
                flash=False,
                on_ambiguous=None,
                send_after=self.now,
                valid_until=self.now + validity,
                idempotency_key=None,
                campaign_id=None,
                created_at=self.now,
            )
            for _ in range(2)
        ]
        with self.engine.begin() as conn:
            assert insert(conn, created) == {change.id for change in created}
        self.rows = [Row(change.id, change.valid_until, change.send_after) for change in created]

    # The worker's side

    @rule(message=st.integers(0, 1), call=st.booleans(), wait=WAITS)
    def claim(self, message: int, call: bool, wait: int) -> None:
        """After ``wait`` seconds a worker claims the message, and (``call``) records its call as
        started at once."""
        self.now += timedelta(seconds=wait)
        self._claim(message)
        handle = self.handles[-1] if self.handles else None
        if call and handle is not None and handle.message == message and not handle.done and handle.call is None:
            self._start(handle)

    def _claim(self, message: int) -> None:
        row = self.rows[message]
        held = uuid.uuid4()
        with self.engine.begin() as conn:
            taken = claim(conn, Claimed(held, "worker", {row.id: ACCOUNT}, self.now, self.now))
        takes = row.status in WAITING and row.claim is None and row.valid_until > self.now and row.send_after <= self.now
        assert [found.id for found in taken] == ([row.id] if takes else [])
        if takes:
            assert (taken[0].attempts, taken[0].first_attempt_at) == (row.attempts, row.first_attempt_at)
            self.handles.append(Handle(held, message, copy.copy(row)))
            row.status, row.claim = Status.CLAIMED, held

    def _open(self, data: st.DataObject, *, called: bool) -> Handle:
        choices = [handle for handle in self.handles if not handle.done and (handle.call is not None) == called]
        return data.draw(st.sampled_from(choices))

    def _unasked(self) -> bool:
        return any(not handle.done and handle.call is None for handle in self.handles)

    @precondition(_unasked)
    @rule(data=st.data(), answer=st.sampled_from(["absent", "near match", "found", "failed"]))
    def ask(self, data: st.DataObject, answer: str) -> None:
        """The submit stage asks the provider about an unsure message before calling again."""
        handle = self._open(data, called=False)
        if not (self.asks and handle.seen.unsure_since is not None and handle.lost is LostAttempt.KEPT):
            return
        row = self.rows[handle.message]
        if answer == "absent" or (answer == "near match" and self.policy.on_ambiguous == "resend"):
            handle.lost = LostAttempt.RESENT
        elif answer == "near match":
            self._decide(handle, Ended(id=row.id, claim=handle.claim, at=self.now, reason="near match, give-up", status=Status.UNKNOWN, code="NEAR"))
        elif answer == "found":
            self._adopt(handle)
        else:
            back = GivenBack(
                id=row.id, claim=handle.claim, at=self.now, reason="asking failed", status=handle.seen.status, until=self.now, code=LOOKUP_FAILED
            )
            self._decide(handle, back)

    def _adopt(self, handle: Handle) -> None:
        row = self.rows[handle.message]
        self.copies += 1
        copy_id = f"found-{self.copies}"
        attempted = Attempted(START, self.now)
        with self.engine.begin() as conn:
            adopted = adopt(conn, Adopted(row.id, handle.claim, ACCOUNT, copy_id, "+421900000990", "the same text", attempted))
        # the other message, alike and attempted in the window, may hold the copy or be in a call
        others = [other for other in self.rows if other is not row and other.last_attempt_at is not None]
        other_holds = any(other.status is Status.CALLING for other in others)
        holds = row.claim == handle.claim and row.status is Status.CLAIMED and not other_holds
        assert adopted == holds
        if not adopted:
            return
        row.provider_message_id = copy_id
        found = Accepted(
            id=row.id,
            claim=handle.claim,
            at=self.now,
            reason=f"adopted as {copy_id}",
            status=Status.SUBMITTED,
            account=ACCOUNT,
            provider_message_id=copy_id,
            provider_status="QUEUED",
            delivery=Delivery.QUEUED,
            next_check_at=self.now + timedelta(seconds=5),
        )
        self._decide(handle, found)

    @precondition(_unasked)
    @rule(data=st.data())
    def give_back_unused(self, data: st.DataObject) -> None:
        handle = self._open(data, called=False)
        row = self.rows[handle.message]
        self._decide(
            handle, GivenBack(id=row.id, claim=handle.claim, at=self.now, reason="unused", status=handle.seen.status, until=self.now, noted=False)
        )

    @precondition(lambda self: any(not handle.done or self.rows[handle.message].claim != handle.claim for handle in self.handles))
    @rule(data=st.data())
    def start_call(self, data: st.DataObject) -> None:
        """The calling statement, under any claim ever taken: a claim taken back or given back is
        refused by the fence; a statement tried again (its answer lost) counts its attempt once."""
        stale = [handle for handle in self.handles if handle.done and self.rows[handle.message].claim != handle.claim]
        self._start(data.draw(st.sampled_from([handle for handle in self.handles if not handle.done] + stale)))

    def _start(self, handle: Handle) -> None:
        row = self.rows[handle.message]
        if handle.seen.unsure_since is not None and handle.lost is LostAttempt.KEPT and self.asks:
            return  # the submit stage asks first
        turned = self.record.start(CallStarted((row.id,), (handle.claim,), self.now, handle.lost))
        held = row.claim == handle.claim
        if held and row.status is Status.CLAIMED:
            row.status, row.attempts = Status.CALLING, row.attempts + 1
            row.first_attempt_at = row.first_attempt_at or self.now
            row.last_attempt_at = self.now
            if handle.lost is LostAttempt.RESENT:
                row.unsure_since, row.possible_duplicate = self.now, True
            handle.call = Call(row.attempts, self.now, f"attempt {row.attempts} via {ACCOUNT}")
        assert turned == ({row.id} if held and row.status is Status.CALLING else set())

    @precondition(lambda self: any(not handle.done and handle.call is not None for handle in self.handles))
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES))
    def call_ends(self, data: st.DataObject, outcome: str) -> None:
        """The record stage decides what the call's outcome makes of the message, from what the
        worker saw: the retry policy for a failure."""
        handle = self._open(data, called=True)
        assert handle.call is not None
        row, seen, call = self.rows[handle.message], handle.seen, handle.call
        if outcome in FIRST_WORDS:
            delivery = FIRST_WORDS[outcome]
            self.copies += 1
            flagged = handle.lost is LostAttempt.RESENT or (handle.lost is LostAttempt.KEPT and seen.unsure_since is not None)
            accepted = Accepted(
                id=row.id,
                claim=handle.claim,
                at=self.now,
                reason="accepted",
                call=call,
                status=delivery.status if delivery else Status.SUBMITTED,
                account=ACCOUNT,
                provider_message_id=f"sent-{self.copies}",
                provider_status=delivery.value.upper() if delivery else "ACCEPTED",
                delivery=delivery,
                next_check_at=self.now + timedelta(seconds=5),
                code=delivery.failure_code if delivery else None,
                possible_duplicate=flagged,
            )
            self._decide(handle, accepted)
            return
        near = handle.lost is LostAttempt.RESENT
        if outcome == "not made":
            uncounted = Uncounted(call.attempt - 1, seen.first_attempt_at)
            not_made = CallNotMade(
                id=row.id,
                claim=handle.claim,
                at=self.now,
                reason="not made",
                call=replace(call, note=None),
                status=Status.RETRYING if uncounted.attempts else Status.QUEUED,
                until=self.now,
                uncounted=uncounted,
                unsure_since=seen.unsure_since if near else None,
                possible_duplicate=seen.possible_duplicate if near else None,
                pinned_account=ACCOUNT if near and seen.unsure_since is not None else None,
            )
            self._decide(handle, not_made)
            return
        unsure_since = call.started_at if handle.lost is LostAttempt.RESENT else seen.unsure_since
        attempt = Attempt(ACCOUNT, call.attempt, call.started_at, seen.first_attempt_at or call.started_at, row.valid_until, False, unsure_since)
        decided = self.policy.after_failure(FAILURES[outcome], attempt, self.now)
        self._decide(handle, failed(decided, row.id, handle.claim, call, self.now, Pin(ACCOUNT, False), seen.first_attempt_at))

    def _decide(self, handle: Handle, change: DispatchChange) -> None:
        handle.done = True
        self.outbox.append(Outcome(change, handle.message))

    # The reclaimer, the validity stage, the sweep

    @precondition(lambda self: bool(self.handles))
    @rule(data=st.data())
    def reclaim(self, data: st.DataObject) -> None:
        """The reclaimer takes back the claim of a worker it takes for dead, from the row as it
        reads it (the worker may still answer: a late answer)."""
        handle = data.draw(st.sampled_from(self.handles))
        row = self.rows[handle.message]
        if row.claim != handle.claim:
            return
        if row.status is Status.CLAIMED:
            waiting = Status.RETRYING if row.attempts else Status.QUEUED
            back = TakenBack(id=row.id, claim=handle.claim, at=self.now, reason="worker lost before the call", status=waiting, until=self.now)
            self.outbox.append(Outcome(back, handle.message))
            return
        assert row.first_attempt_at is not None and row.last_attempt_at is not None
        lost = Failure(ErrorKind.AMBIGUOUS, WORKER_LOST, "worker lost during the provider call")
        attempt = Attempt(ACCOUNT, row.attempts, row.last_attempt_at, row.first_attempt_at, row.valid_until, False, row.unsure_since)
        decided = self.policy.after_failure(lost, attempt, self.now)
        call = Call(row.attempts, row.last_attempt_at, None)
        self.outbox.append(Outcome(failed(decided, row.id, handle.claim, call, self.now, Pin(ACCOUNT, False), row.first_attempt_at), handle.message))

    @rule(kind=st.sampled_from(["validity stage", "expire all", "expire one", "requeue"]), message=st.integers(0, 1), fault=st.booleans(), wait=WAITS)
    def sweep(self, kind: str, message: int, fault: bool, wait: int) -> None:
        """The validity stage ends a message it found waiting once its validity is over (written
        later, as decided); the sweep expires every waiting message past its validity, or those
        it names, and touches those whose pointer it queues again; after ``wait`` seconds."""
        self.now += timedelta(seconds=wait)
        row = self.rows[message]
        if kind == "validity stage":
            if row.status in WAITING and row.claim is None and self.now >= row.valid_until:
                status = Status.UNKNOWN if row.unsure_since is not None else Status.EXPIRED
                ended = Ended(id=row.id, claim=None, at=self.now, reason="validity over", status=status, code="VALIDITY_EXPIRED")
                self.outbox.append(Outcome(ended, message))
            return
        if kind == "requeue":
            with self.engine.begin() as conn:
                requeue(conn, Requeued((row.id,), self.now))
            return
        ids = None if kind == "expire all" else (row.id,)
        ending = [
            row
            for row in self.rows
            if row.status in WAITING and row.valid_until <= self.now and (ids is None or (row.claim is None and row.id in ids))
        ]
        with self._faulty(fault and bool(ending)) as conn:
            expired = expire(conn, Expired(self.now, ids))
        if fault and ending:
            return
        assert sorted(expired) == sorted(row.id for row in ending)
        for row in ending:
            row.status = Status.UNKNOWN if row.unsure_since is not None else Status.EXPIRED
            row.events += 1

    # Writing what was decided, as the dispatch ledger does

    @precondition(lambda self: bool(self.outbox))
    @rule(data=st.data(), fault=st.booleans())
    def write(self, data: st.DataObject, fault: bool) -> None:
        """Write one decided change, or two for both messages in one batch; any of them again."""
        first = data.draw(st.sampled_from(self.outbox))
        others = [outcome for outcome in self.outbox if outcome.message != first.message]
        batch = [first, *data.draw(st.lists(st.sampled_from(others), max_size=1) if others else st.just([]))]
        model = copy.deepcopy(self.rows)
        verdicts = [verdict(model[outcome.message], outcome.change) for outcome in batch]
        writes = any(v.notes for v in verdicts)
        changes = [outcome.change for outcome in batch]
        before = self._snapshot()
        try:
            with self._faulty(fault and writes) as conn:
                apply(conn, changes)
            assert all(v.applied for v in verdicts), "apply wrote a batch one of whose rows moved on"
        except MovedOn:
            event("a batch moved on")
            assert not all(v.applied for v in verdicts)
            assert self._snapshot() == before, "a batch the fence refused wrote nothing"
            with self._faulty(fault and writes) as conn:
                apply_each(conn, changes, self.now)
        if fault and writes:
            return
        for outcome, found in zip(batch, verdicts):
            event(f"{type(outcome.change).__name__} {found.told()}{' (a replay)' if outcome.writes else ''}")
            outcome.writes += 1
            if found.late_win:
                self.late_wins.add(outcome.message)
        self.rows = model

    # Receipts

    @rule(
        message=st.integers(0, 1),
        reports=st.lists(st.sampled_from(["queued", "sent", "delivered", "undeliverable", "no receipt"]), min_size=1, max_size=2),
        locked=st.booleans(),
        fault=st.booleans(),
    )
    def receipts(self, message: int, reports: list[str], locked: bool, fault: bool) -> None:
        """The status poller or a callback: the row locked if still submitted, and the reports
        applied in order of progress; or (``locked`` False) a receipt applied to a row as it is,
        which may not be submitted yet (before the acceptance is written)."""
        row = self.rows[message]
        status, delivery, notes = row.status, row.delivery, []
        for report in sorted(reports, key=lambda word: 10 if word == "no receipt" else Delivery(word).progress):
            if status.final:
                break
            if report == "no receipt":
                status = Status.UNKNOWN
            elif report != (delivery.value if delivery else None) and Delivery(report).progress >= (delivery.progress if delivery else 0):
                delivery = Delivery(report)
                status = delivery.status
            else:
                continue
            notes.append(Note(self.now, status, f"reported {report}", None, report.upper()))
        reported = Reported(
            row.id, status, None if status.final else self.now + timedelta(seconds=30), tuple(notes), delivery if delivery != row.delivery else None
        )
        before = self._snapshot()
        submitted = row.status is Status.SUBMITTED
        with self._faulty(fault and submitted and bool(notes)) as conn:
            if locked:
                found = lock_submitted(conn, [row.id], self.now)
                assert set(found) == ({row.id} if submitted else set())
                if found:
                    apply(conn, [reported])
            elif submitted:
                apply(conn, [reported])
            else:
                with pytest.raises(MovedOn):
                    apply(conn, [reported])
                assert self._snapshot(conn) == before, "a receipt for a row not submitted wrote nothing"
        if not submitted or (fault and notes):
            return
        row.status, row.delivery, row.events = status, delivery, row.events + len(notes)

    # Changes the transition table refuses

    @precondition(lambda self: any(row.claim is not None for row in self.rows))
    @rule(message=st.integers(0, 1), wrong=st.sampled_from(["ended submitted", "accepted queued", "given back calling", "failed retry final"]))
    def refused(self, message: int, wrong: str) -> None:
        """A change naming a status its kind may not lead to, under the row's own claim (the
        fence would let it through): refused, nothing written, by the first try and the second."""
        row = self.rows[message]
        at, held = self.now, row.claim
        call = Call(max(row.attempts, 1), row.last_attempt_at or at, "attempt")
        change: DispatchChange
        if wrong == "ended submitted":
            change = Ended(id=row.id, claim=held, at=at, reason="a bug", status=Status.SUBMITTED, code=None)
        elif wrong == "accepted queued":
            change = Accepted(
                id=row.id,
                claim=held,
                at=at,
                reason="a bug",
                call=call,
                status=Status.QUEUED,
                account=ACCOUNT,
                provider_message_id="bug",
                provider_status="X",
                delivery=None,
                next_check_at=at,
            )
        elif wrong == "given back calling":
            change = GivenBack(id=row.id, claim=held, at=at, reason="a bug", status=Status.CALLING, until=at)
        else:
            change = failed(Defer(at, "a bug", Status.UNDELIVERABLE), row.id, held, call, at, Pin(ACCOUNT, False), row.first_attempt_at)
        before = self._snapshot()
        with pytest.raises(TransitionRefused), self.engine.begin() as conn:
            apply(conn, [change])
        assert self._snapshot() == before
        with pytest.raises(TransitionRefused), self.engine.begin() as conn:
            apply_each(conn, [change], at)
        assert self._snapshot() == before

    # What must hold after every step

    @invariant()
    def rows_are_the_models(self) -> None:
        with self.engine.connect() as conn:
            for row in self.rows:
                found = conn.execute(select(MESSAGES).where(MESSAGES.c.id == row.id)).one()
                events = conn.execute(select(func.count()).select_from(EVENTS).where(EVENTS.c.message_id == row.id)).scalar_one()
                seen = (
                    found.status,
                    found.claim_id,
                    found.attempts,
                    found.first_attempt_at,
                    found.last_attempt_at,
                    found.unsure_since,
                    found.possible_duplicate,
                    found.provider_message_id,
                    found.delivery,
                    found.send_after,
                    events,
                )
                assert seen == row.seen(), f"message {self.rows.index(row)}: the row {seen} is not the model's {row.seen()}"
                assert (found.claim_id is not None) == (Status(found.status) in {Status.CLAIMED, Status.CALLING})

    @invariant()
    def attempts_never_exceed_one_plus_retries(self) -> None:
        assert all(row.attempts <= 1 + MAX_RETRIES for row in self.rows)

    @invariant()
    def a_final_status_never_changes(self) -> None:
        for message, row in enumerate(self.rows):
            was = self.finals.get(message)
            if was is not None and was is not row.status:
                assert was is Status.UNKNOWN and message in self.late_wins, f"final {was} became {row.status}"
            if row.status in FINAL:
                self.finals[message] = row.status
            self.late_wins.discard(message)

    # Helpers

    def _snapshot(self, conn: Any = None) -> tuple[list[Any], list[Any]]:
        if conn is None:
            with self.engine.connect() as own:
                return self._snapshot(own)
        ids = [row.id for row in self.rows]
        rows = [tuple(found) for found in conn.execute(select(MESSAGES).where(MESSAGES.c.id.in_(ids)).order_by(MESSAGES.c.id))]
        events = [tuple(found) for found in conn.execute(select(EVENTS).where(EVENTS.c.message_id.in_(ids)).order_by(EVENTS.c.id))]
        return rows, events

    def _faulty(self, fault: bool) -> _Faulty:
        return _Faulty(self, fault)


class _Faulty:
    """A transaction; with ``fault``, one in which the next history line fails to insert (a
    trigger raises), and the change under way must then leave nothing behind."""

    def __init__(self, machine: Lifecycle, fault: bool) -> None:
        self.machine, self.fault = machine, fault
        self.before: tuple[list[Any], list[Any]] | None = None

    def __enter__(self) -> Any:
        self.before = self.machine._snapshot() if self.fault else None
        self.context = self.machine.engine.begin()
        conn = self.context.__enter__()
        if self.fault:
            conn.execute(text("UPDATE fault SET armed = 1"))
        return conn

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        self.context.__exit__(kind, error, trace)
        if not self.fault or isinstance(error, MovedOn):
            return False
        assert isinstance(error, DBAPIError) and "injected fault" in str(error), f"the armed fault did not fail the write: {error!r}"
        assert self.machine._snapshot() == self.before, "a write that failed in the middle left something behind"
        event("a fault failed a write")
        return True


def _install_fault(engine: Engine) -> None:
    """A table ``fault`` and a trigger that fails any insert into the history while it is armed."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE fault (armed INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO fault VALUES (0)"))
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER fault_on_event BEFORE INSERT ON sms_message_event WHEN (SELECT armed FROM fault) = 1 "
                    "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                )
            )
            return
        conn.execute(
            text(
                "CREATE FUNCTION fault_on_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF (SELECT armed FROM fault) = 1 THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(text("CREATE TRIGGER fault_on_event BEFORE INSERT ON sms_message_event FOR EACH ROW EXECUTE FUNCTION fault_on_event()"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = get_engine(database_url)
    _install_fault(engine)
    yield engine


@pytest.mark.timeout(0 if PROFILE == "long" else 300)
def test_the_lifecycle_keeps_its_invariants_under_random_changes(engine: Engine) -> None:
    machine = type("LifecycleOn" + engine.dialect.name.capitalize(), (Lifecycle,), {"engine": engine})
    run_state_machine_as_test(machine, settings=settings.get_profile(PROFILE))


def test_whether_a_late_answer_goes_to_the_history_does_not_depend_on_the_rest_of_its_batch(engine: Engine) -> None:
    """Found by the machine above: a worker's late failure for a message another worker has
    claimed since was written to its history when the batch also gave back a claim of another
    message (a change that may find a row ``claimed``), and not when it came alone."""
    machine = type("Scripted", (Lifecycle,), {"engine": engine})()
    machine.create(timedelta(hours=3), asks=False, on_ambiguous="resend")
    now, (first, second) = machine.now, machine.rows
    lost, other = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        claim(conn, Claimed(lost, "lost worker", {first.id: ACCOUNT}, now, now))
    assert machine.record.start(CallStarted((first.id,), (lost,), now)) == {first.id}
    call = Call(1, now, "attempt 1 via telekom-sk")
    reclaimed = Failed(
        id=first.id,
        claim=lost,
        at=now,
        reason="worker lost",
        call=replace(call, note=None),
        then=Then.RETRY,
        status=Status.RETRYING,
        code=WORKER_LOST,
        until=now,
    )
    with engine.begin() as conn:
        apply(conn, [reclaimed])
        claim(conn, Claimed(other, "another worker", {first.id: ACCOUNT, second.id: ACCOUNT}, now, now))
    late = Failed(id=first.id, claim=lost, at=now, reason="timeout", call=call, then=Then.RETRY, status=Status.RETRYING, code="TIMEOUT", until=now)
    given_back = GivenBack(id=second.id, claim=other, at=now, reason="unused", status=Status.QUEUED, until=now, noted=False)
    before = machine._snapshot()

    for batch in ([late], [late, given_back]):
        with pytest.raises(MovedOn), engine.begin() as conn:
            apply(conn, batch)
        with engine.begin() as conn:
            apply_each(conn, batch, now)
        assert machine._snapshot()[1] == before[1], f"{len(batch)} change(s): the history of a message claimed since is as it was"
    machine.teardown()


def test_a_claim_the_reclaimer_read_before_the_call_is_not_taken_back_once_the_call_started(engine: Engine) -> None:
    """Found by the machine above: the reclaimer reads a row ``claimed`` and decides to take it
    back; the worker it took for dead starts its call meanwhile. Taking the claim back then would
    put a message that may be at the provider back to wait as if never sent (resent unflagged).
    The row stays ``calling``, for the reclaimer's next look to decide as an ambiguous attempt."""
    machine = type("Scripted", (Lifecycle,), {"engine": engine})()
    machine.create(timedelta(hours=3), asks=False, on_ambiguous="resend")
    now, (first, _) = machine.now, machine.rows
    slow = uuid.uuid4()
    with engine.begin() as conn:
        claim(conn, Claimed(slow, "slow worker", {first.id: ACCOUNT}, now, now))
    taken_back = TakenBack(id=first.id, claim=slow, at=now, reason="worker lost before the call", status=Status.QUEUED, until=now)
    assert machine.record.start(CallStarted((first.id,), (slow,), now)) == {first.id}

    with pytest.raises(MovedOn), engine.begin() as conn:
        apply(conn, [taken_back])
    with engine.begin() as conn:
        apply_each(conn, [taken_back], now)

    with engine.connect() as conn:
        row = conn.execute(select(MESSAGES.c.status, MESSAGES.c.claim_id, MESSAGES.c.attempts).where(MESSAGES.c.id == first.id)).one()
    assert (row.status, row.claim_id, row.attempts) == ("calling", slow, 1), "the call may be at the provider: not given back"
