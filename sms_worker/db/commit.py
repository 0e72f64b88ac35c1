"""Whether a transaction whose COMMIT failed was committed.

A COMMIT whose connection dropped before the answer came back may have been applied or not, and
the error cannot say which. PostgreSQL can: ``pg_xact_status`` of the transaction's id, asked on
a fresh connection, answers ``committed``, ``aborted`` or ``in progress`` (PostgreSQL 13+; its
documentation gives this very use: "whether their transaction committed or aborted after the
application and database server become disconnected while a COMMIT is in progress"). Its
answer alone is not trusted: after a failover to an asynchronous standby, or an id reused, the
same id can name another transaction, so ``committed`` counts only if a *witness* (a query for
one row the transaction inserted, by its primary key) finds the row too; committed without it,
nothing of ours is there. SQLite commits inside this process: once its COMMIT returned or
raised, a fresh connection finds the transaction's rows, or never will, so the witness alone
decides there.

Every question goes on a connection of its own, opened with a connect timeout of the patience
left (psycopg's ``connect_timeout``, at least 1 s, which libpq makes 2; SQLite's ``timeout``),
so a host that does not answer holds the caller no longer than it asked to wait.
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

RECHECK_INTERVAL = 0.1
"""Seconds between two questions while the answer is ``in progress`` or the database is away."""


class CommitOutcome(enum.Enum):
    COMMITTED = "committed"
    """Its rows are in the database: the transaction committed and its witness row is found."""
    ROLLED_BACK = "rolled back"
    """Nothing it wrote is in the database: it aborted, or its id says committed and its witness
    row is absent (the id names another transaction)."""
    UNKNOWN = "unknown"
    """The database could not say within the patience given."""


@dataclass(frozen=True, slots=True)
class CommitProbe:
    """What a transaction leaves behind, before its COMMIT, to be asked about afterwards."""

    witness: Select[Any]
    """Selects a row only if the transaction committed: one it inserted, by its primary key."""
    xid: int | None = None
    """PostgreSQL's id of the transaction (``pg_current_xact_id()``); None on SQLite."""


def commit_probe(conn: Connection, witness: Select[Any]) -> CommitProbe:
    """Call inside the transaction, after its writes and before its COMMIT (one round trip on
    PostgreSQL, none elsewhere)."""
    if conn.dialect.name != "postgresql":
        return CommitProbe(witness)
    return CommitProbe(witness, int(conn.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()))


def commit_outcome(engine: Engine, probe: CommitProbe, patience: float) -> CommitOutcome:
    """Ask the database, on a fresh connection, whether the probed transaction committed; while
    it cannot say (the transaction still ``in progress``, or the database unreachable), ask again
    every :data:`RECHECK_INTERVAL` for up to ``patience`` seconds (a connect included, give or
    take libpq's 2 s minimum), then answer ``UNKNOWN``."""
    deadline = time.monotonic() + patience
    while True:
        try:
            outcome = _ask(engine, probe, deadline - time.monotonic())
        except DBAPIError:
            outcome = CommitOutcome.UNKNOWN
        if outcome is not CommitOutcome.UNKNOWN or time.monotonic() >= deadline:
            return outcome
        time.sleep(RECHECK_INTERVAL)


def _ask(engine: Engine, probe: CommitProbe, seconds_left: float) -> CommitOutcome:
    asking = _engine_for_one_question(engine, seconds_left)
    try:
        with asking.connect() as conn:
            status = None
            if probe.xid is not None:
                status = conn.execute(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": str(probe.xid)}).scalar_one()
                if status == "aborted":
                    return CommitOutcome.ROLLED_BACK
                if status == "in progress":
                    return CommitOutcome.UNKNOWN
            found = conn.execute(probe.witness).first() is not None
    finally:
        asking.dispose()
    if found:
        return CommitOutcome.COMMITTED
    if probe.xid is None or status == "committed":
        return CommitOutcome.ROLLED_BACK
    return CommitOutcome.UNKNOWN  # the id too old for PostgreSQL to know, and no row: it cannot say


def _engine_for_one_question(engine: Engine, seconds_left: float) -> Engine:
    """``engine``'s database, without a pool, whose connect gives up after ``seconds_left``
    (at least 1 s)."""
    if engine.dialect.name == "sqlite":
        connect_args: dict[str, Any] = {"timeout": max(1.0, seconds_left)}
    else:
        connect_args = {"connect_timeout": max(1, math.ceil(seconds_left))}
    return create_engine(engine.url, poolclass=NullPool, connect_args=connect_args)
