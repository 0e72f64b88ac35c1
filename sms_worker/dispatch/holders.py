"""Which of our messages a provider's message id names: one rule for delivery callbacks, status
polls and adoption after an ambiguous attempt.

A provider's id names one of an account's messages only for a time: a provider that restarts
its numbering (the sandbox does) gives a new message an id an older one had. So an id names,
among the account's messages that hold it, the one whose attempt started last
(``last_attempt_at``: the attempt the provider took, or the lost one whose copy was adopted), and
where the question is about a time window (adoption: the lost attempt's), only messages
attempted within it count. Older holders are never given what the provider now says under that
id; each time one is passed over, a warning names the id.

Adopting a listed copy (:func:`sms_worker.lifecycle.write.adopt`) is the write that makes a
message its holder, fenced so that one copy is never adopted by two of our messages: two alike
messages (same account, recipient and text) asked about at once, by one worker or two, may both
see it free.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, select

from sms_worker.lifecycle.changes import Attempted
from sms_worker.lifecycle.tables import MESSAGES
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


def _submitted(holder: Holder) -> tuple[datetime, datetime, str]:
    return (holder.last_attempt_at or holder.created_at, holder.created_at, str(holder.id))
