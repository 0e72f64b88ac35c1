"""The database's failures as a producer is told about them: which ones mean the server could not
do the work (:class:`~sms_worker.errors.StoreUnavailable`), which ones mean the schema is behind
this version (:class:`~sms_worker.errors.NotMigrated`), and in what words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from sms_worker.errors import NotMigrated, StoreUnavailable
from sms_worker.outages import describe_outage, first_line


def is_unavailable(error: DBAPIError) -> bool:
    """Whether ``error`` is the server failing (refused, lost, locked, out of space), as opposed
    to a statement it refused (an integrity or a programming error: a fault of ours); the rule
    of :func:`~sms_worker.outages.describe_outage`."""
    return describe_outage(error) is not None


def unavailable(error: DBAPIError, problem: str | None = None) -> StoreUnavailable:
    """``error`` as :class:`StoreUnavailable` of the database; ``problem`` defaults to
    ``connection lost`` when SQLAlchemy saw the connection drop, else ``failed``."""
    return StoreUnavailable("database", problem or ("connection lost" if error.connection_invalidated else "failed"), first_line(error))


@contextmanager
def reaching_the_database() -> Iterator[None]:
    """Connecting (and migrating) before anything is written: a server that cannot be reached,
    or a SQLite file that cannot be opened (its directory not creatable), raises
    :class:`StoreUnavailable` ``database: unreachable (...)``."""
    try:
        yield
    except DBAPIError as error:
        if not is_unavailable(error):
            raise
        raise unavailable(error, "unreachable") from error
    except OSError as error:
        raise StoreUnavailable("database", "unreachable", first_line(error)) from error


def not_migrated(engine: Engine, error: DBAPIError) -> NotMigrated | None:
    """Whether ``error``, a statement's failure on ``engine``, is the schema: :class:`NotMigrated`
    when the database is not at the revision this version needs, asked of the database on a
    connection of its own rather than read from the error's text (a missing table is sqlite3's
    ``OperationalError`` and psycopg's ``UndefinedTable``, in the server's language). None when
    the database is at that revision, when ``error`` lost its connection (a server away, not a
    schema behind; nothing more is asked of it), or when asking fails too."""
    if error.connection_invalidated:
        return None
    from sms_worker.db.migrate import schema_behind

    try:
        return schema_behind(engine)
    except (DBAPIError, OSError):
        return None


@contextmanager
def saying_when_not_migrated(engine: Engine) -> Iterator[None]:
    """Statements on ``engine`` in the block: one that fails because the database is behind this
    version (:func:`not_migrated`) raises :class:`NotMigrated` instead, whose message says to run
    ``sms-worker db upgrade``; any other failure is raised as it is. Nothing is asked while the
    statements succeed."""
    try:
        yield
    except DBAPIError as error:
        behind = not_migrated(engine, error)
        if behind is None:
            raise
        raise behind from error
