"""Which of our messages a provider's message id names: one rule for delivery callbacks, status
polls and adoption after an ambiguous attempt.

A provider's id names one of an account's messages only for a time: a provider that restarts
its numbering (the sandbox does) gives a new message an id an older one had. So an id names,
among the account's messages that hold it, the one whose attempt started last
(``last_attempt_at``: the attempt the provider took, or the lost one whose copy was adopted), and
where the question is about a time window (adoption: the lost attempt's), only messages
attempted within it count. Older holders are never given what the provider now says under that
id; each time one is passed over, a warning names the id.

Adopting a listed copy (:func:`adopt`) is the write that makes a message its holder, fenced so
that one copy is never adopted by two of our messages: two alike messages (same account,
recipient and text) asked about at once, by one worker or two, may both see it free.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, and_, func, literal, or_, select, update

from sms_worker.dispatch.sql import MESSAGES
from sms_worker.lifecycle.status import Status
from sms_worker.logs import get_logger

log = get_logger("holders")


@dataclass(frozen=True, slots=True)
class Holder:
    """The message a provider id names, with what applying a receipt to it needs."""

    id: uuid.UUID
    account: str
    provider_message_id: str
    last_attempt_at: datetime | None
    valid_until: datetime
    created_at: datetime
    passed_over: int = 0
    """Older messages of the account that hold the same id (0: the id was never reused)."""


HOLDER_COLUMNS = tuple(MESSAGES.c[name] for name in ("id", "account", "provider_message_id", "last_attempt_at", "valid_until", "created_at"))
"""The columns a :class:`Holder` is read from, in its order."""


@dataclass(frozen=True, slots=True)
class Attempted:
    """Only messages whose last attempt started within ``[start, end]`` (aware, our clock)."""

    start: datetime
    end: datetime


def holders(conn: Connection, account: str, provider_ids: Iterable[str], *, attempted: Attempted | None = None, seen_in: str) -> dict[str, Holder]:
    """For each of ``provider_ids`` some message of ``account`` holds, the one it names (see the
    module docstring), among those attempted within ``attempted`` when given. ``seen_in`` says
    where the id came from (``callback``, ``status check``, ``listing``) in the warning logged
    when older holders are passed over."""
    wanted = sorted(set(provider_ids))
    if not wanted:
        return {}
    statement = select(*HOLDER_COLUMNS).where(MESSAGES.c.account == account, MESSAGES.c.provider_message_id.in_(wanted))
    if attempted is not None:
        statement = statement.where(MESSAGES.c.last_attempt_at >= attempted.start, MESSAGES.c.last_attempt_at <= attempted.end)
    found: dict[str, list[Holder]] = defaultdict(list)
    for row in conn.execute(statement):
        found[row.provider_message_id].append(Holder(*row))
    named: dict[str, Holder] = {}
    for provider_id, rows in found.items():
        latest = max(rows, key=_submitted)
        named[provider_id] = replace(latest, passed_over=len(rows) - 1)
        if len(rows) > 1:
            log.warning(
                "%s of %s: id %r names %d of our messages (the provider reused it); it is %s's, the one attempted last",
                seen_in,
                account,
                provider_id,
                len(rows),
                latest.id,
            )
    return named


@dataclass(frozen=True, slots=True)
class Adoption:
    """Message ``message_id``, held by claim ``claim_id``, adopts the listed copy
    ``provider_message_id`` of ``account``: a copy made in a window that messages attempted
    within ``attempted`` may have made; ``recipient`` and ``text`` are the message's (its row's)."""

    message_id: uuid.UUID
    claim_id: uuid.UUID
    account: str
    provider_message_id: str
    recipient: str
    text: str
    attempted: Attempted


def adopt(conn: Connection, adoption: Adoption) -> bool:
    """Make the message the holder of the copy, in one ``UPDATE`` fenced by its claim and by
    ``NOT EXISTS`` another message of the account, attempted within ``adoption.attempted``, that
    holds the copy or is in a call to the same recipient with the same text (its answer, not
    written yet, may name this copy). False, nothing written, if the fence holds it back (or the
    claim was taken back): the copy may be another's, so the message is asked about again later.

    Run in a transaction of its own (``conn.begin()``), committed before the answer is used. On
    PostgreSQL the copy's advisory lock (held to the commit) makes two adoptions of one copy
    take turns, so the second's ``NOT EXISTS`` sees the first; SQLite has one writer at a time."""
    other = MESSAGES.alias("other")
    in_window = other.c.last_attempt_at.between(adoption.attempted.start, adoption.attempted.end)
    calling_alike = and_(other.c.status == Status.CALLING.value, other.c.recipient == adoption.recipient, other.c.text == adoption.text)
    taken = (
        select(literal(1))
        .where(
            other.c.account == adoption.account,
            other.c.id != adoption.message_id,
            in_window,
            or_(other.c.provider_message_id == adoption.provider_message_id, calling_alike),
        )
        .exists()
    )
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_lock_key(adoption.account, adoption.provider_message_id))))
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id == adoption.message_id, MESSAGES.c.claim_id == adoption.claim_id, ~taken)
        .values(provider_message_id=adoption.provider_message_id)
    )
    return conn.execute(statement).rowcount == 1


def _lock_key(account: str, provider_message_id: str) -> int:
    """A signed 64-bit advisory lock key for one copy of one account."""
    digest = hashlib.blake2b(f"{account}\0{provider_message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _submitted(holder: Holder) -> tuple[datetime, datetime, str]:
    return (holder.last_attempt_at or holder.created_at, holder.created_at, str(holder.id))
