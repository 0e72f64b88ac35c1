"""Bulk statements shared by the dispatcher, the receipt poller and the recovery sweep."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Row, case, func, update

from sms_worker.db.bulk import insert_rows, update_rows
from sms_worker.db.models import Message, MessageEvent, table_of
from sms_worker.lifecycle.ambiguity import runs_out_sql
from sms_worker.lifecycle.status import WAITING_VALUES, Status

MESSAGES = table_of(Message)
EVENTS = table_of(MessageEvent)
VALIDITY_EXPIRED: Final = "VALIDITY_EXPIRED"
"""The error code of a message whose validity ended before it could be sent (again)."""
NEVER_SENT_EXPIRY = "validity ended before it could be sent; never sent"
UNSURE_EXPIRY = "validity ended before it could be sent again; an earlier attempt may have reached the provider, so the outcome is unknown"


def status_of_listed(statuses: Iterable[str]) -> ColumnElement[bool]:
    """``status IN (statuses)`` for a statement that also lists the rows by id: wrapped so that
    the rows are found by their primary key. SQLite, without statistics, would rather walk the
    status index, through every waiting message of the backlog, for each batch."""
    return func.coalesce(MESSAGES.c.status, "").in_(list(statuses))


def lock_rows(conn: Connection, ids: list[Any], statuses: Iterable[str], now: datetime, *conditions: ColumnElement[bool]) -> dict[Any, Row]:
    """Take the write lock on the rows still in ``statuses`` and return them as they are now.

    Everything written afterwards in the same transaction applies only to these rows, so a row
    another process moved on meanwhile is left alone and gets no false event.
    """
    if not ids:
        return {}
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(ids), status_of_listed(statuses), *conditions)
        .values(updated_at=now)
        .returning(
            MESSAGES.c.id,
            MESSAGES.c.status,
            MESSAGES.c.attempts,
            MESSAGES.c.error_code,
            MESSAGES.c.claim_id,
            MESSAGES.c.delivery,
            MESSAGES.c.provider_status,
        )
    )
    return {row.id: row for row in conn.execute(statement)}


def update_each(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Update each message by its ``id``, in bulk."""
    update_rows(conn, MESSAGES, rows)


def expire_unsent(conn: Connection, now: datetime, ids: list[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Expire messages still waiting for a first or next attempt once their validity is over;
    one unsure since an ambiguous attempt ends ``unknown`` instead (it may have been delivered).

    An earlier error code (a paused account, the last transient fault) is kept: it says why.
    """
    conditions = [MESSAGES.c.status.in_(WAITING_VALUES), MESSAGES.c.valid_until <= now]
    if ids is not None:
        conditions = [MESSAGES.c.id.in_(ids), status_of_listed(WAITING_VALUES), MESSAGES.c.valid_until <= now]
    sure = MESSAGES.c.unsure_since.is_(None)
    statement = (
        update(MESSAGES)
        .where(*conditions)
        .values(
            status=runs_out_sql(Status.EXPIRED, MESSAGES.c.unsure_since),
            error_code=func.coalesce(MESSAGES.c.error_code, VALIDITY_EXPIRED),
            error_text=func.coalesce(MESSAGES.c.error_text, case((sure, NEVER_SENT_EXPIRY), else_=UNSURE_EXPIRY)),
            updated_at=now,
        )
        .returning(MESSAGES.c.id, MESSAGES.c.status)
    )
    ended = list(conn.execute(statement))
    add_events(
        conn,
        [
            event(row.id, now, Status(row.status), NEVER_SENT_EXPIRY if row.status == Status.EXPIRED else UNSURE_EXPIRY, code=VALIDITY_EXPIRED)
            for row in ended
        ],
    )
    return [row.id for row in ended]


EVENT_COLUMNS = ["message_id", "at", "status", "provider_status", "code", "reason"]


def add_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    insert_rows(conn, EVENTS, EVENT_COLUMNS, events)


def event(
    message_id: uuid.UUID, at: datetime, status: str, reason: str, *, provider_status: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """One row of a message's history: its status after the event, why, and the provider's word
    (a report) or the error code (a failed attempt) that caused it."""
    return {"message_id": message_id, "at": at, "status": str(status), "provider_status": provider_status, "code": code, "reason": reason}
