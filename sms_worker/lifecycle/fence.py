"""The fence, written once: a change applies only while the row is still what its writer saw.

A worker holds a message by a claim (``claim_id``, set by :class:`~.changes.Claimed`); whatever
it writes about that message afterwards applies only while the row still names that claim, so
a worker the reclaimer took for dead (and whose claims it took back) overwrites nothing newer.
A batch's decision about a message it did not claim applies only while the row names no claim.
Either way the row must still be in one of the statuses the change may leave
(:mod:`.transitions`). :func:`fenced` is that condition as a SQLAlchemy where-clause, for every
writer: the dispatch batches' outcomes, the call record, the claim, an adoption, the receipts,
the sweep, and the reclaimer's changes (the last and the first through the write-behind buffer). :func:`taken_back` is a late
answer's: the claim was taken back from this very call and nothing has happened since.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column

from sms_worker.lifecycle.status import Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.transitions import late_source

Claim = uuid.UUID | ColumnElement[Any] | Sequence[ColumnElement[Any]] | None
"""A claim as :func:`fenced` takes it: an id, a SQL expression (a bind parameter, a ``CASE``),
several bind parameters (any of them), or None (no claim)."""


def fenced(claim: Claim, statuses: Iterable[Status]) -> ColumnElement[bool]:
    """The row names ``claim`` (None: no claim) and is in one of ``statuses``."""
    column = MESSAGES.c.claim_id
    held: ColumnElement[bool]
    if claim is None:
        held = column.is_(None)
    elif isinstance(claim, Sequence):
        held = column.in_(list(claim))
    else:
        held = column == claim
    return and_(held, status_in(statuses))


def taken_back(attempt: Any, started_at: Any) -> ColumnElement[bool]:
    """The row's claim was taken back from the call numbered ``attempt`` that started at
    ``started_at`` (values or bind parameters), and nothing has happened to it since: it names
    no claim, no attempt started after that one (its last attempt is that one, counted or
    not), and it is in a status a late answer may still change (:func:`late_source`)."""
    return and_(fenced(None, late_source()), MESSAGES.c.attempts == attempt, MESSAGES.c.last_attempt_at == started_at)


def status_in(statuses: Iterable[Status]) -> ColumnElement[bool]:
    """``status IN (...)``, the statuses written into the statement (so that it is one statement
    whatever the values, fit for executemany), wrapped in ``COALESCE`` because every fenced
    write lists its rows by id: the rows are then found by their primary key. SQLite, without
    statistics, would rather walk the status index, through every waiting message of the
    backlog, for each batch."""
    return func.coalesce(MESSAGES.c.status, literal_column("''")).in_([literal_column(f"'{status.value}'") for status in sorted(statuses)])
