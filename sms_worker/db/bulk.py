"""Bulk inserts straight through the DB-API cursor.

At a hundred thousand rows, SQLAlchemy's per-value bind processing costs more than the database
does. The few types this package stores are converted here the way SQLAlchemy stores them: on
SQLite a UUID as 32 hex digits and a datetime as naive UTC text; PostgreSQL takes them through
COPY, which psycopg adapts natively.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table


class _SqliteValues:
    """Converts values for SQLite; a batch repeats a few timestamps, so each is formatted once."""

    def __init__(self) -> None:
        self._times: dict[datetime, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return value.hex
        if isinstance(value, datetime):
            text = self._times.get(value)
            if text is None:
                text = self._times[value] = value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
            return text
        if isinstance(value, bool):
            return int(value)
        return value


def insert_rows(conn: Connection, table: Table, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts holding at least ``columns``) in one executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    convert = _SqliteValues()
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    conn.exec_driver_sql(sql, [tuple(convert(row[c]) for c in columns) for row in rows])


def update_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str = "id") -> None:
    """UPDATE each row by ``key``: one executemany per distinct set of columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(c for c in row if c != key)), []).append(row)
    postgres = conn.dialect.name == "postgresql"
    convert = _native if postgres else _SqliteValues()
    marker = "%s" if postgres else "?"
    for columns, group in by_columns.items():
        assignments = ", ".join(f"{c} = {marker}" for c in columns)
        sql = f"UPDATE {table.name} SET {assignments} WHERE {key} = {marker}"
        conn.exec_driver_sql(sql, [tuple(convert(row[c]) for c in (*columns, key)) for row in group])


def _native(value: Any) -> Any:
    return value


def _copy_rows(conn: Connection, table: Table, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY, in the caller's transaction: several times faster than executemany."""
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))
