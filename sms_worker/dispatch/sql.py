"""Bulk statements shared by the dispatcher, the receipt poller and the recovery sweep."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Connection, bindparam, insert, update

from sms_worker.db.models import Message, MessageEvent

MESSAGES = Message.__table__
EVENTS = MessageEvent.__table__


def lock_rows(conn: Connection, ids: list[Any], statuses: Iterable[str], now: Any) -> dict[Any, str]:
    """Take the write lock on the rows still in ``statuses`` and return their current status.

    Everything written afterwards in the same transaction applies only to these rows, so a row
    another process moved on meanwhile is left alone and gets no false event.
    """
    if not ids:
        return {}
    statement = (
        update(MESSAGES)
        .where(MESSAGES.c.id.in_(ids), MESSAGES.c.status.in_(list(statuses)))
        .values(updated_at=now)
        .returning(MESSAGES.c.id, MESSAGES.c.status)
    )
    return dict(conn.execute(statement).all())


def update_each(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE per distinct set of columns; each row dict carries ``id``."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row)), []).append(row)
    for columns, group in by_columns.items():
        statement = update(MESSAGES).where(MESSAGES.c.id == bindparam("_id"))
        statement = statement.values({c: bindparam(f"_{c}") for c in columns if c != "id"})
        conn.execute(statement, [{f"_{key}": value for key, value in row.items()} for row in group])


def add_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    if events:
        conn.execute(insert(EVENTS), events)


def event(message_id: Any, at: Any, status: str, reason: str, provider_status: str | None = None) -> dict[str, Any]:
    return {"message_id": message_id, "at": at, "status": status, "provider_status": provider_status, "reason": reason}
