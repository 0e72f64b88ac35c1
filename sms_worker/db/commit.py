"""Whether a transaction whose COMMIT failed was committed.

A COMMIT whose connection dropped before the answer came back may have been applied or not, and
the error cannot say which. PostgreSQL can: ``pg_xact_status`` of the transaction's id, asked on
a fresh connection, answers ``committed``, ``aborted`` or ``in progress`` (PostgreSQL 13+; its
documentation gives this very use: "whether their transaction committed or aborted after the
application and database server become disconnected while a COMMIT is in progress"). SQLite
commits inside this process: once its COMMIT returned or raised, a fresh connection finds the
transaction's rows, or never will, so a *witness* (a query for one row the transaction inserted)
decides there.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, text
from sqlalchemy.exc import DBAPIError

RECHECK_INTERVAL = 0.1
"""Seconds between two questions while the answer is ``in progress`` or the database is away."""


class CommitOutcome(enum.Enum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CommitProbe:
    """What a transaction leaves behind, before its COMMIT, to be asked about afterwards."""

    witness: Select[Any]
    """Selects a row only if the transaction committed: one it inserted."""
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
    every :data:`RECHECK_INTERVAL` for up to ``patience`` seconds, then answer ``UNKNOWN``."""
    deadline = time.monotonic() + patience
    while True:
        try:
            outcome = _ask(engine, probe)
        except DBAPIError:
            outcome = CommitOutcome.UNKNOWN
        if outcome is not CommitOutcome.UNKNOWN or time.monotonic() >= deadline:
            return outcome
        time.sleep(RECHECK_INTERVAL)


def _ask(engine: Engine, probe: CommitProbe) -> CommitOutcome:
    with engine.connect() as conn:
        if probe.xid is not None:
            status = conn.execute(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": str(probe.xid)}).scalar_one()
            if status == "committed":
                return CommitOutcome.COMMITTED
            if status == "aborted":
                return CommitOutcome.ROLLED_BACK
            if status == "in progress":
                return CommitOutcome.UNKNOWN
        found = conn.execute(probe.witness).first() is not None
    if found:
        return CommitOutcome.COMMITTED
    return CommitOutcome.ROLLED_BACK if probe.xid is None else CommitOutcome.UNKNOWN
