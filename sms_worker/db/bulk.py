"""Bulk writes straight through the DB-API cursor.

At a hundred thousand rows, SQLAlchemy's per-value bind processing costs more than the database
does. The few types this package stores are converted here the way SQLAlchemy stores them: on
SQLite a UUID as 32 hex digits, a datetime as naive UTC text and a boolean as 0/1; PostgreSQL
takes them through COPY (inserts) or executemany (updates), which psycopg adapts natively.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Connection, DateTime, Table, Uuid
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIModule


def _sqlite_converters(table: Table, columns: tuple[str, ...]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns SQLite cannot take as Python gives them."""
    times: dict[datetime, str] = {}

    def timestamp(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = times.get(value)
        if text is None:
            text = times[value] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text

    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, Uuid):
            converters.append((position, lambda value: None if value is None else value.hex))
        elif isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
            converters.append((position, timestamp))
        elif isinstance(kind, Boolean):
            converters.append((position, lambda value: None if value is None else int(value)))
    return converters


def _parameters(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]], types: tuple[str, ...] | None = None
) -> list[tuple[Any, ...]]:
    """Each row's values for ``columns``, converted for the driver by the type of the column of
    the same position in ``types`` (default: ``columns`` themselves)."""
    get = itemgetter(*columns)
    if len(columns) == 1:
        return [(get(row),) for row in rows]
    if conn.dialect.name != "sqlite":
        return [get(row) for row in rows]
    converters = _sqlite_converters(table, types or columns)
    params = []
    for row in rows:
        values = list(get(row))
        for position, convert in converters:
            values[position] = convert(values[position])
        params.append(tuple(values))
    return params


def insert_rows(conn: Connection, table: Table, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts holding at least ``columns``) in one executemany (COPY on PostgreSQL)."""
    if not rows:
        return
    names = tuple(columns)
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, names, rows)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(['?'] * len(names))})"
    conn.exec_driver_sql(sql, _parameters(conn, table, names, rows))


def driver_values(dialect: str, table: Table, values: list[tuple[str, Any]]) -> tuple[Any, ...]:
    """Values for a hand-written statement, each converted for the ``dialect``'s driver by the
    type of the column it is named after (``(column, value)`` pairs, in placeholder order)."""
    if dialect != "sqlite":
        return tuple(value for _, value in values)
    converters = dict(_sqlite_converters(table, tuple(name for name, _ in values)))
    return tuple(converters[n](value) if n in converters else value for n, (_, value) in enumerate(values))


def read_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """A UUID column's value as a hand-written statement returns it: psycopg gives a UUID,
    sqlite3 the 32 hex digits it was stored as."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def placeholder(dialect: str) -> str:
    """The driver's placeholder: ``%s`` for psycopg, ``?`` for sqlite3."""
    return "%s" if dialect == "postgresql" else "?"


FENCE = "__fence__"
"""The key, in a row given to :func:`update_rows`, of the value its ``fence`` column must still hold."""


def update_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str = "id", *, fence: str | None = None, where: str = "") -> int:
    """UPDATE each row by ``key``: one executemany per distinct set of columns; returns how many
    rows were updated. With ``fence``, a row is updated only while that column still holds the
    value the row gives under :data:`FENCE`; ``where`` adds a fixed SQL condition."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(c for c in row if c not in (key, FENCE))), []).append(row)
    marker = placeholder(conn.dialect.name)
    updated = 0
    for columns, group in by_columns.items():
        assignments = ", ".join(f"{c} = {marker}" for c in columns)
        conditions = [f"{key} = {marker}", *([f"{fence} = {marker}"] if fence else []), *([where] if where else [])]
        sql = f"UPDATE {table.name} SET {assignments} WHERE {' AND '.join(conditions)}"
        names, types = (*columns, key, *([FENCE] if fence else [])), (*columns, key, *([fence] if fence else []))
        updated += conn.exec_driver_sql(sql, _parameters(conn, table, names, group, types)).rowcount
    return updated


def _copy_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY, in the caller's transaction: several times faster than executemany.
    A failure is raised as SQLAlchemy raises any other statement's (:func:`_as_statement_error`)."""
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver = driver_connection(conn.connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for values in _parameters(conn, table, columns, rows):
                copy.write_row(values)
    except conn.dialect.loaded_dbapi.Error as error:
        raise _as_statement_error(conn, driver, statement, error) from error


def _as_statement_error(conn: Connection, driver: Any, statement: str, error: DBAPIModule.Error) -> DBAPIError:
    """A driver's error met outside SQLAlchemy (COPY) as SQLAlchemy gives any other: the
    :class:`DBAPIError` of its kind (``ProgrammingError`` for a missing table, ``OperationalError``
    for a server away) wrapping it, and, when it lost the connection, the connection invalidated
    and the error saying so; so that callers tell an outage, a schema behind and a bug apart
    (:mod:`sms_worker.db.failures`) whichever way the statement went."""
    lost = conn.dialect.is_disconnect(error, driver, None)
    if lost:
        conn.invalidate(error)
    wrapped = DBAPIError.instance(statement, None, error, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=conn.dialect)
    assert isinstance(wrapped, DBAPIError), f"SQLAlchemy did not wrap {type(error).__name__}"
    return wrapped


def driver_connection(pooled: PoolProxiedConnection) -> Any:
    """The DB-API connection (psycopg's or sqlite3's) under a pooled one, for what SQLAlchemy
    does not offer (COPY, autocommit); raises RuntimeError once the pooled one is closed."""
    driver = pooled.driver_connection
    if driver is None:
        raise RuntimeError("the pooled database connection is closed")
    return driver
