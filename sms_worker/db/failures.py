"""The database's failures as a producer is told about them: which ones mean the server could not
do the work (:class:`~sms_worker.errors.StoreUnavailable`), and in what words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from sms_worker.errors import StoreUnavailable
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
