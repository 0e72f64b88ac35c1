"""How a message's row changes: each change of :mod:`.changes` applied by one function here (and
:class:`~.calls.CallRecord` for :class:`~.changes.CallStarted`).

Every function checks the change against the table of allowed transitions (:func:`~.transitions.rule_of`:
the status it names, before anything is written) and writes it behind its fence
(:func:`~.fence.fenced`: the status it finds, in the same statement), with its history, in the
caller's transaction: a change is applied whole or not at all. Writes stay batched: one
statement per group of rows alike (an executemany of a statement compiled once:
:class:`~sms_worker.db.bulk.DriverStatement`), one insert of events.

**Outcomes and late answers.** :func:`apply` writes a dispatch batch's outcomes and raises
:class:`MovedOn` if any row's fence no longer holds (the caller's transaction is then rolled
back). :func:`apply_each` is the write-behind buffer's second try, in a new transaction: it locks the rows,
asks the database which fence each one still meets, and applies each change on its own. A
change for a row that moved on is dropped, except the outcome of a call whose claim the
reclaimer took back meanwhile (a *late answer*): it goes to the history, and an acceptance wins
over the reclaimer's guess while the row was taken back from this very call and nothing has
happened since (:func:`~.fence.taken_back`), so the message is not sent again; an acceptance
that comes later marks the message ``possible_duplicate``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, and_, bindparam, case, false, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from sms_worker.db.bulk import DriverStatement, insert_rows
from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.ambiguity import runs_out_sql
from sms_worker.lifecycle.changes import (
    NEVER_SENT_EXPIRY,
    UNSURE_EXPIRY,
    VALIDITY_EXPIRED,
    Accepted,
    Adopted,
    CallNotMade,
    Claimed,
    Created,
    DispatchChange,
    Expired,
    Failed,
    GivenBack,
    Note,
    Reported,
    Requeued,
)
from sms_worker.lifecycle.fence import fenced, status_in, taken_back
from sms_worker.lifecycle.status import WAITING, Delivery, Status
from sms_worker.lifecycle.tables import EVENTS, MESSAGES
from sms_worker.lifecycle.transitions import Fence, Transition, late_source, rule_of

_INSERT_CHUNK: Final = 2000
_EVENT_COLUMNS: Final = ["message_id", "at", "status", "provider_status", "code", "reason"]
_CREATED_COLUMNS: Final = [
    "id",
    "recipient",
    "sender",
    "text",
    "encoding",
    "segments",
    "priority",
    "account",
    "requested_account",
    "pinned_account",
    "status",
    "attempts",
    "unicode",
    "flash",
    "on_ambiguous",
    "send_after",
    "valid_until",
    "idempotency_key",
    "campaign_id",
    "created_at",
    "updated_at",
]
"""The columns a :class:`~.changes.Created` writes (the others keep their defaults)."""
_LATE: Final = "late answer, after the sweep took the claim back: "


class MovedOn(SmsWorkerError):
    """A fenced write found a row no longer as its change expected: nothing of the group was
    written (the caller's transaction is rolled back)."""


# Created


def insert(conn: Connection, created: Sequence[Created]) -> set[uuid.UUID]:
    """Insert the new rows and their first line of history; a row whose idempotency key exists
    is skipped. Returns the ids inserted."""
    if not created:
        return set()
    rule = rule_of(created[0])
    refused = next((change for change in created if change.status not in rule.target), None)
    if refused is not None:
        rule_of(refused)  # raises TransitionRefused, naming the status
    plain = [change for change in created if change.idempotency_key is None]
    keyed = [change for change in created if change.idempotency_key is not None]
    insert_rows(conn, MESSAGES, _CREATED_COLUMNS, plain, objects=True)
    inserted = {change.id for change in plain}
    if keyed:
        upsert = _insert_ignoring_conflicts(conn).returning(MESSAGES.c.id)
        rows = [{name: getattr(change, name) for name in _CREATED_COLUMNS} for change in keyed]
        for start in range(0, len(rows), _INSERT_CHUNK):
            inserted.update(conn.execute(upsert, rows[start : start + _INSERT_CHUNK]).scalars())
    _add_events(conn, [(change.id, _creation_note(change)) for change in created if change.id in inserted])
    return inserted


def _insert_ignoring_conflicts(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that skips rows whose idempotency key exists, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(MESSAGES).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return sqlite.insert(MESSAGES).on_conflict_do_nothing(index_elements=["idempotency_key"])


def _creation_note(change: Created) -> Note:
    reason = "accepted"
    if change.status is Status.SCHEDULED:
        reason = f"accepted, scheduled for {change.send_after.isoformat()}"
    return Note(change.created_at, change.status, reason)


# Claimed


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A message as its claim found it: what the provider call needs."""

    id: uuid.UUID
    recipient: str
    sender: str | None
    text: str
    valid_until: datetime
    unicode: bool | None
    flash: bool
    attempts: int
    first_attempt_at: datetime | None


_CLAIMED_COLUMNS = [
    MESSAGES.c[name] for name in ("id", "recipient", "sender", "text", "valid_until", "unicode", "flash", "attempts", "first_attempt_at")
]


def claim(conn: Connection, change: Claimed) -> list[ClaimedRow]:
    """Claim, in one statement, the messages of ``change`` that still wait unclaimed, are valid
    and due; returns them (a message another worker claimed first is not among them)."""
    rule = rule_of(change)
    accounts = change.accounts
    account: Any = next(iter(accounts.values())) if len(set(accounts.values())) == 1 else case(accounts, value=MESSAGES.c.id)
    statement = (
        update(MESSAGES)
        .where(
            MESSAGES.c.id.in_(list(accounts)), fenced(None, rule.source), MESSAGES.c.valid_until > change.at, MESSAGES.c.send_after <= change.due_by
        )
        .values(status=Status.CLAIMED.value, account=account, claim_id=change.claim, dispatcher=change.dispatcher, updated_at=change.at)
        .returning(*_CLAIMED_COLUMNS)
    )
    return [ClaimedRow(*row) for row in conn.execute(statement)]


# Adopted


def adopt(conn: Connection, change: Adopted) -> bool:
    """Make the message the holder of the copy, in one ``UPDATE`` fenced by its claim and by
    ``NOT EXISTS`` another message of the account, attempted within ``change.attempted``, that
    holds the copy or is in a call to the same recipient with the same text (its answer, not
    written yet, may name this copy). False, nothing written, if the fence holds it back (or the
    claim was taken back): the copy may be another's, so the message is asked about again later.

    Run in a transaction of its own (``conn.begin()``), committed before the answer is used. On
    PostgreSQL the copy's advisory lock (held to the commit) makes two adoptions of one copy
    take turns, so the second's ``NOT EXISTS`` sees the first; SQLite has one writer at a time."""
    rule = rule_of(change)
    other = MESSAGES.alias("other")
    in_window = other.c.last_attempt_at.between(change.attempted.start, change.attempted.end)
    calling_alike = and_(other.c.status == Status.CALLING.value, other.c.recipient == change.recipient, other.c.text == change.text)
    taken = (
        select(literal(1))
        .where(
            other.c.account == change.account,
            other.c.id != change.id,
            in_window,
            or_(other.c.provider_message_id == change.provider_message_id, calling_alike),
        )
        .exists()
    )
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_lock_key(change.account, change.provider_message_id))))
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id == change.id, fenced(change.claim, rule.source), ~taken)
        .values(provider_message_id=change.provider_message_id)
    )
    return conn.execute(statement).rowcount == 1


def _lock_key(account: str, provider_message_id: str) -> int:
    """A signed 64-bit advisory lock key for one copy of one account."""
    digest = hashlib.blake2b(f"{account}\0{provider_message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Outcomes (the dispatch changes) and receipts


def apply(conn: Connection, changes: Sequence[DispatchChange | Reported]) -> None:
    """Apply every change behind its fence, with its history; raises :class:`MovedOn` if any
    row moved on (the caller rolls the transaction back). One executemany per group of changes
    alike (kind, fence, columns), one insert of events."""
    _write(conn, [(change, rule_of(change)) for change in changes])
    _add_events(conn, [note for change in changes for note in _notes(change)])


def apply_each(conn: Connection, changes: Sequence[DispatchChange], now: datetime) -> set[uuid.UUID]:
    """The write-behind buffer's second try, after :func:`apply` raised :class:`MovedOn`: each change on its
    own, as its row now stands (see the module docstring). Returns the messages whose pointers
    are due: those whose change was applied, and those whose claim, in doubt, never took the row
    (it waits with no pointer but this one)."""
    standings = _standings(conn, changes, now)
    applied: list[tuple[DispatchChange, Transition]] = []
    doubled: list[uuid.UUID] = []
    notes: list[tuple[uuid.UUID, Note]] = []
    due: set[uuid.UUID] = set()
    for change in changes:
        standing = standings.get(change.id)
        if standing is None or standing.status not in _lockable(change):
            continue  # a status this change never finds: as if alone in its batch
        if standing.holds:
            applied.append((change, rule_of(change)))
            notes += _notes(change)
            due.add(change.id)
        elif change.call is None:
            if isinstance(change, GivenBack) and standing.waits:
                due.add(change.id)
        else:
            wins = isinstance(change, Accepted) and standing.taken_back
            if wins:
                applied.append((change, rule_of(change, Fence.TAKEN_BACK)))
            elif isinstance(change, Accepted):
                doubled.append(change.id)
            notes += _late_notes(change, None if wins else standing.status)
    _write(conn, applied)
    if doubled:  # the rows are locked, and no fence of theirs holds: they went on without the call that made a copy
        conn.execute(update(MESSAGES).where(MESSAGES.c.id.in_(doubled)).values(possible_duplicate=True))
    _add_events(conn, notes)
    return due


def _late_notes(change: DispatchChange, stands: Status | None) -> list[tuple[uuid.UUID, Note]]:
    """A late answer's lines: its call's, and its own, which says it is late, and, unless it
    wins (``stands`` is None), that it was not applied and the row's status (``stands``)."""
    *call, (message_id, note) = _notes(change)
    prefix = _LATE
    if stands is not None:
        prefix += "not applied: "
        if isinstance(change, Accepted):
            prefix += "POSSIBLE DUPLICATE: the provider took this attempt though the message went on without it; "
    return [*call, (message_id, replace(note, status=stands or note.status, reason=prefix + note.reason))]


def _write(conn: Connection, changes: Sequence[tuple[DispatchChange | Reported, Transition]]) -> None:
    """Write each change's columns under its rule's fence: one executemany per group alike;
    raises :class:`MovedOn` unless every row was written."""
    groups: dict[tuple[Transition, tuple[str, ...]], list[dict[str, Any]]] = {}
    for change, rule in changes:
        values = _columns(change)
        fence: dict[str, Any] = {"fence_id": change.id}
        if rule.fence is Fence.HELD:
            assert not isinstance(change, Reported)
            fence["fence_claim"] = change.claim
        elif rule.fence is Fence.TAKEN_BACK:
            assert not isinstance(change, Reported) and change.call is not None
            fence.update(fence_attempt=change.call.attempt, fence_started=change.call.started_at)
        groups.setdefault((rule, tuple(sorted(values))), []).append({**values, **fence})
    written = 0
    for (rule, columns), rows in groups.items():
        statement = _fenced_update(conn, rule, columns)
        written += conn.exec_driver_sql(statement.sql, statement.parameters(rows)).rowcount
    if written != len(changes):
        raise MovedOn(f"{len(changes) - written} of {len(changes)} row(s) moved on")


def _lockable(change: DispatchChange) -> frozenset[Status]:
    """The statuses in which :func:`apply_each` looks at a row for ``change``: those it may find
    (its fence's), a late answer's, and waiting. Each change is judged by its own, whatever else
    is in its batch (a row another worker claimed meanwhile gets a late line only from a change
    that may find it claimed)."""
    return rule_of(change).source | late_source() | WAITING


@dataclass(frozen=True, slots=True)
class _Standing:
    """Where a locked row stands for its change: its status, and which fence it meets."""

    status: Status
    holds: bool
    """The change's own fence."""
    waits: bool
    """Waiting, unclaimed."""
    taken_back: bool
    """A late acceptance's (:func:`~.fence.taken_back`)."""


def _standings(conn: Connection, changes: Sequence[DispatchChange], now: datetime) -> dict[uuid.UUID, _Standing]:
    """Lock the rows of ``changes`` still in a status any of them may find (``updated_at`` =
    ``now``: everything written afterwards in the transaction applies to these rows as they are
    now) and ask which fence each one meets. (Asked by a ``SELECT`` after the lock, not in its
    ``RETURNING``: SQLite 3.40 evaluates ``IS NULL`` there as false.)"""
    by_id = MESSAGES.c.id
    ids = [change.id for change in changes]
    lockable = {status for change in changes for status in _lockable(change)}
    lock = update(MESSAGES).where(by_id.in_(ids), status_in(lockable)).values(updated_at=now).returning(by_id)
    if not conn.execute(lock).all():
        return {}
    holds = case(*((by_id == change.id, fenced(change.claim, rule_of(change).source)) for change in changes), else_=false())
    late = [(change.id, change.call) for change in changes if isinstance(change, Accepted) and change.call is not None]
    taken: ColumnElement[bool] = false()
    if late:
        taken = case(*((by_id == message_id, taken_back(call.attempt, call.started_at)) for message_id, call in late), else_=false())
    look = select(by_id, MESSAGES.c.status, holds.label("holds"), fenced(None, WAITING).label("waits"), taken.label("taken_back")).where(
        by_id.in_(ids), status_in(lockable)
    )
    return {row.id: _Standing(Status(row.status), bool(row.holds), bool(row.waits), bool(row.taken_back)) for row in conn.execute(look)}


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted message as receipts find it (:func:`lock_submitted`): what it last reported."""

    status: Status
    delivery: Delivery | None
    provider_status: str | None


def lock_submitted(conn: Connection, ids: list[uuid.UUID], now: datetime) -> dict[uuid.UUID, Submitted]:
    """Lock the rows of ``ids`` that are still ``submitted`` and return them as they are now, for
    receipts to be applied to them in the same transaction (:class:`~.changes.Reported`)."""
    if not ids:
        return {}
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(ids), status_in({Status.SUBMITTED}))
        .values(updated_at=now)
        .returning(MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.delivery, MESSAGES.c.provider_status)
    )
    return {
        row.id: Submitted(Status(row.status), Delivery(row.delivery) if row.delivery else None, row.provider_status)
        for row in conn.execute(statement)
    }


_STATEMENTS: dict[tuple[str, Transition, tuple[str, ...]], DriverStatement] = {}


def _fenced_update(conn: Connection, rule: Transition, columns: tuple[str, ...]) -> DriverStatement:
    """``UPDATE ... SET columns WHERE id = :fence_id AND <the rule's fence>``, compiled once per
    dialect, rule and columns. Bind names: the columns, ``fence_id``, ``fence_claim`` and, for a
    late answer, ``fence_attempt`` and ``fence_started``."""
    key = (conn.dialect.name, rule, columns)
    statement = _STATEMENTS.get(key)
    if statement is None:
        if rule.fence is Fence.TAKEN_BACK:
            fence = taken_back(
                bindparam("fence_attempt", type_=MESSAGES.c.attempts.type), bindparam("fence_started", type_=MESSAGES.c.last_attempt_at.type)
            )
        else:
            fence = fenced(bindparam("fence_claim", type_=MESSAGES.c.claim_id.type) if rule.fence is Fence.HELD else None, rule.source)
        built = update(MESSAGES).where(MESSAGES.c.id == bindparam("fence_id"), fence).values({name: bindparam(name) for name in columns})
        statement = _STATEMENTS[key] = DriverStatement.of(built, conn.dialect)
    return statement


def _columns(change: DispatchChange | Reported) -> dict[str, Any]:
    """The columns a change writes, by name."""
    if isinstance(change, Reported):
        values: dict[str, Any] = {"status": change.status, "next_check_at": change.next_check_at}
        if change.delivery is not None:
            values["delivery"] = change.delivery.value
        for name in ("provider_status", "delivered_at"):
            if getattr(change, name) is not None:
                values[name] = getattr(change, name)
        if change.code is not None:
            values.update(error_code=change.code, error_text=change.error_text)
        return values
    values = {"status": change.status, "updated_at": change.at}
    if change.claim is not None:
        values.update(claim_id=None, dispatcher=None)
    if isinstance(change, Accepted):
        values.update(
            account=change.account,
            provider_message_id=change.provider_message_id,
            provider_status=change.provider_status,
            delivery=change.delivery.value if change.delivery else None,
            next_check_at=change.next_check_at,
            error_code=change.code,
            error_text=change.reason if change.code is not None else None,
        )
        if change.delivery is Delivery.DELIVERED:
            values["delivered_at"] = change.at
        if change.possible_duplicate:
            values["possible_duplicate"] = True
        return values
    if isinstance(change, Failed | CallNotMade | GivenBack) and change.until is not None:
        values["send_after"] = change.until
    if isinstance(change, Failed | CallNotMade):
        if change.uncounted is not None:
            values.update(attempts=change.uncounted.attempts, first_attempt_at=change.uncounted.first_attempt_at)
        if change.unsure_since is not None:
            values["unsure_since"] = change.unsure_since
        if change.pinned_account is not None:
            values["pinned_account"] = change.pinned_account
    if isinstance(change, CallNotMade) and change.possible_duplicate is not None:
        values["possible_duplicate"] = change.possible_duplicate
    if not isinstance(change, CallNotMade) and change.code is not None:
        values.update(error_code=change.code, error_text=change.reason)
    return values


def _notes(change: DispatchChange | Reported) -> list[tuple[uuid.UUID, Note]]:
    """The lines a change adds to its message's history: the call's it answers, then its own."""
    if isinstance(change, Reported):
        return [(change.id, note) for note in change.notes]
    lines: list[Note] = []
    if change.call is not None and change.call.note is not None:
        lines.append(Note(change.call.started_at, Status.CALLING, change.call.note))
    code = None if isinstance(change, CallNotMade) else change.code
    provider_status = change.provider_status if isinstance(change, Accepted) else None
    if not isinstance(change, GivenBack) or change.noted:
        lines.append(Note(change.at, change.status, change.reason, code, provider_status))
    return [(change.id, line) for line in lines]


def _add_events(conn: Connection, notes: list[tuple[uuid.UUID, Note]]) -> None:
    rows = [
        {
            "message_id": message_id,
            "at": note.at,
            "status": note.status,
            "provider_status": note.provider_status,
            "code": note.code,
            "reason": note.reason,
        }
        for message_id, note in notes
    ]
    insert_rows(conn, EVENTS, _EVENT_COLUMNS, rows)


# Expired, Requeued


def expire(conn: Connection, change: Expired) -> list[uuid.UUID]:
    """End the waiting messages whose validity is over (all, or those of ``change.ids``), each
    with a line of history; returns their ids."""
    rule = rule_of(change)
    # Every waiting message: a plain status IN, so that the status index finds them (waiting
    # messages name no claim). Some: by id, behind the fence.
    conditions = [MESSAGES.c.status.in_([status.value for status in rule.source]), MESSAGES.c.valid_until <= change.at]
    if change.ids is not None:
        conditions = [MESSAGES.c.id.in_(change.ids), fenced(None, rule.source), MESSAGES.c.valid_until <= change.at]
    sure = MESSAGES.c.unsure_since.is_(None)
    statement = (
        update(MESSAGES)
        .where(*conditions)
        .values(
            status=runs_out_sql(Status.EXPIRED, MESSAGES.c.unsure_since),
            error_code=func.coalesce(MESSAGES.c.error_code, VALIDITY_EXPIRED),
            error_text=func.coalesce(MESSAGES.c.error_text, case((sure, NEVER_SENT_EXPIRY), else_=UNSURE_EXPIRY)),
            updated_at=change.at,
        )
        .returning(MESSAGES.c.id, MESSAGES.c.status)
    )
    ended = list(conn.execute(statement))
    reasons = {Status.EXPIRED: NEVER_SENT_EXPIRY, Status.UNKNOWN: UNSURE_EXPIRY}
    _add_events(conn, [(row.id, Note(change.at, Status(row.status), reasons[Status(row.status)], VALIDITY_EXPIRED)) for row in ended])
    return [row.id for row in ended]


def requeue(conn: Connection, change: Requeued) -> None:
    """Touch the waiting rows whose pointers are queued again (see :class:`~.changes.Requeued`)."""
    if change.ids:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id.in_(change.ids), fenced(None, rule_of(change).source)).values(updated_at=change.at))
