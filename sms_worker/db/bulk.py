"""Bulk writes straight through the DB-API cursor.

At a hundred thousand rows, SQLAlchemy's per-value bind processing costs more than the database
does. The few types this package stores are converted here the way SQLAlchemy stores them: on
SQLite a UUID as 32 hex digits, a datetime as naive UTC text and a boolean as 0/1; PostgreSQL
takes them through COPY (inserts) or executemany (updates), which psycopg adapts natively.
Statements other than inserts are written in SQLAlchemy's expression language and compiled once
for the driver (:class:`DriverStatement`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Connection, DateTime, Dialect, Executable, Table, Uuid
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

Converter = Callable[[Any], Any]

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIModule


def _sqlite_converter(kind: TypeEngine[Any], times: dict[datetime, str] | None = None) -> Converter | None:
    """How a value of the column type ``kind`` goes to sqlite3 (None: as it is). ``times``
    caches the text of each datetime, for a bulk insert that repeats a few of them."""

    def timestamp(value: datetime | None) -> str | None:
        if value is None:
            return None
        if times is None:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        text = times.get(value)
        if text is None:
            text = times[value] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text

    if isinstance(kind, Uuid):
        return lambda value: None if value is None else value.hex
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        return timestamp
    if isinstance(kind, Boolean):
        return lambda value: None if value is None else int(value)
    return None


def _sqlite_converters(table: Table, columns: tuple[str, ...]) -> list[tuple[int, Converter]]:
    """(position, converter) for the columns SQLite cannot take as Python gives them."""
    times: dict[datetime, str] = {}
    found = [(position, _sqlite_converter(table.c[name].type, times)) for position, name in enumerate(columns)]
    return [(position, convert) for position, convert in found if convert is not None]


def _parameters(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: list[Any],
    get: Callable[..., Any] = itemgetter,
) -> list[tuple[Any, ...]]:
    """Each row's values for ``columns`` (read by ``get``: ``itemgetter`` for dicts, ``attrgetter``
    for objects), converted for the driver by the type of each column."""
    read = get(*columns)
    if len(columns) == 1:
        return [(read(row),) for row in rows]
    if conn.dialect.name != "sqlite":
        return [read(row) for row in rows]
    converters = _sqlite_converters(table, columns)
    params = []
    for row in rows:
        values = list(read(row))
        for position, convert in converters:
            values[position] = convert(values[position])
        params.append(tuple(values))
    return params


def insert_rows(conn: Connection, table: Table, columns: list[str], rows: list[Any], *, objects: bool = False) -> None:
    """INSERT ``rows`` (dicts holding at least ``columns``, or objects with them as attributes:
    ``objects``) in one executemany (COPY on PostgreSQL)."""
    if not rows:
        return
    names = tuple(columns)
    get = attrgetter if objects else itemgetter
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, names, rows, get)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(['?'] * len(names))})"
    conn.exec_driver_sql(sql, _parameters(conn, table, names, rows, get))


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement of SQLAlchemy's expression language compiled once for one dialect, to run
    straight on the driver (``Connection.exec_driver_sql``, or a DB-API cursor): no statement to
    build, compile or cache per call, no per-value bind processing. Its values are given by bind
    parameter name (:meth:`parameters`); bind parameters given a value in the statement keep it."""

    sql: str
    order: tuple[tuple[str, TypeEngine[Any]], ...] | None
    """The bind names in placeholder order, each with its type, for a positional driver
    (sqlite3's ``?``: its values are converted by type); None for one that takes them by name
    and adapts them itself (psycopg's ``%(name)s``)."""
    defaults: Mapping[str, Any]

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> DriverStatement:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        defaults = {name: bind.value for bind, name in compiled.bind_names.items() if not bind.required}
        order = None
        if dialect.positional:
            types = {name: bind.type for bind, name in compiled.bind_names.items()}
            order = tuple((name, types[name]) for name in compiled.positiontup or ())
        return cls(compiled.string, order, defaults)

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The driver's parameters for each row of bind values (by name): a tuple each for a
        positional driver, a mapping for one that takes names."""
        defaults = self.defaults
        given = [{**defaults, **row} for row in rows] if defaults else rows
        if self.order is None:
            return list(given)
        times: dict[datetime, str] = {}
        plan = [(name, _sqlite_converter(kind, times)) for name, kind in self.order]
        return [tuple([row[name] if convert is None else convert(row[name]) for name, convert in plan]) for row in given]


def read_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """A UUID column's value as a hand-written statement returns it: psycopg gives a UUID,
    sqlite3 the 32 hex digits it was stored as."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def _copy_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[Any], get: Callable[..., Any]) -> None:
    """PostgreSQL's COPY, in the caller's transaction: several times faster than executemany.
    A failure is raised as SQLAlchemy raises any other statement's (:func:`_as_statement_error`)."""
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver = driver_connection(conn.connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for values in _parameters(conn, table, columns, rows, get):
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
