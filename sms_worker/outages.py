"""Telling an outage (a server away) from a bug, so each is logged as what it is.

A Redis or database outage is expected and survived: it is logged in one line and what it
interrupted is tried again. Anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError

_DB_OUTAGES = frozenset({"OperationalError", "InterfaceError"})


def describe_outage(error: BaseException) -> str | None:
    """A one-line description if ``error`` means a server is away, else None (a bug). Knows
    SQLAlchemy's wrapped errors and the drivers' own (sqlite3, psycopg)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    if (isinstance(error, DBAPIError) and error.connection_invalidated) or (
        type(original).__name__ in _DB_OUTAGES and type(original).__module__.split(".")[0] in ("sqlite3", "psycopg")
    ):
        return f"the database is unreachable ({type(original).__name__})"
    import redis  # here: a command that reads only the database (status) imports no redis-py

    if isinstance(error, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)):
        return f"Redis is unreachable ({type(error).__name__})"
    return None


def outage_behind(error: BaseException) -> str | None:
    """:func:`describe_outage` of ``error`` or of an error it was raised from or while handling
    (kombu wraps redis-py's ``ConnectionError`` in its own ``OperationalError``), else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (described := describe_outage(current)) is not None:
            return described
        current = current.__cause__ or current.__context__
    return None


class OutageInOneLine(logging.Filter):
    """Makes a record logged with the traceback of an outage one line: its message's first line
    and what is away. Celery beat logs "Couldn't apply scheduled task" with a traceback and the
    stack when Redis is away (as it is for a moment when the stack stops); the promoter and the
    sweeps say the same in one line, and so does this."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and (outage := outage_behind(error)) is not None:
            record.msg = f"{record.getMessage().splitlines()[0]} ({outage})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def first_line(error: BaseException) -> str:
    """What a failure says, in one line for a user: the driver's own message under SQLAlchemy's
    wrapper, first line only (PostgreSQL adds hints and SQLAlchemy a link on the lines after it):
    ``connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused``,
    ``Error 111 connecting to 127.0.0.1:6379. Connection refused.``; the error's type if it says
    nothing."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(original).strip().splitlines() or [type(original).__name__]
    return lines[0]
