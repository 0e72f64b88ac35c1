"""The record that calls may start (:class:`~.changes.CallStarted`): one statement per group of
calls, on a connection of its own.

It is the one write between deciding to call and calling, so it is kept as short as a write can
be: a statement compiled once per shape (:class:`~sms_worker.db.bulk.DriverStatement`: no
statement to build per call, no per-value bind processing), run on a database connection this
process keeps for it, in autocommit. No pool checkout, no transaction to open and close, and no
lock held while this thread waits for the interpreter between two statements. (Built and run
through SQLAlchemy's expression language in a pooled transaction, this write cost the
dispatcher a quarter of its rate.) Its fence is everyone's (:func:`~.fence.fenced`).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from sqlalchemy import Dialect, Engine, bindparam, func, literal_column, select, true, update

from sms_worker.db.bulk import DriverStatement, driver_connection, read_uuid
from sms_worker.lifecycle.changes import CallStarted, LostAttempt
from sms_worker.lifecycle.fence import fenced
from sms_worker.lifecycle.status import Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.transitions import Transition, rule_of


class CallRecord:
    """Turns claimed rows to ``calling`` for this process, fenced by their claims."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._lock = threading.Lock()
        self._statements: dict[tuple[int, int, LostAttempt], tuple[DriverStatement, DriverStatement]] = {}

    def start(self, change: CallStarted) -> set[uuid.UUID]:
        """Apply ``change``: count an attempt and set ``calling`` on each of its rows still held
        by one of its claims, and do to an earlier lost attempt what ``change.lost`` says;
        returns the ids it turned. Raises if the database is away.

        The connection kept from an earlier call may have died meanwhile (the database was
        restarted): the statement is then tried once more on a new one, so the first batch
        after an outage is called at once rather than deferred. Trying again is safe even if
        the first try was applied and only its answer lost: the rows it turned are no longer
        ``claimed``, and the look that follows finds them ``calling`` under these claims, with
        their attempt counted once."""
        update_statement, select_statement = self._statements_for(change, rule_of(change))
        values: dict[str, Any] = {"now": change.at}
        values.update({f"claim_{n}": claim for n, claim in enumerate(change.claims)})
        values.update({f"id_{n}": message_id for n, message_id in enumerate(change.ids)})
        with self._lock:
            kept = self._connection is not None
            while True:
                try:
                    cursor = self._cursor()
                    cursor.execute(update_statement.sql, update_statement.parameters([values])[0])
                    if cursor.rowcount == len(change.ids):
                        return set(change.ids)
                    cursor.execute(select_statement.sql, select_statement.parameters([values])[0])
                    return {read_uuid(value) for (value,) in cursor.fetchall()}
                except Exception:
                    self.close()
                    if not kept:
                        raise
                    kept = False

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - a connection the server already dropped
                pass
            self._connection = None

    def _statements_for(self, change: CallStarted, rule: Transition) -> tuple[DriverStatement, DriverStatement]:
        """The update and the look that follows it (the ids turned ``calling`` under these
        claims), for this many ids and claims and this lost attempt: compiled once."""
        key = (len(change.ids), len(change.claims), change.lost)
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = _compiled(self._engine.dialect, rule, *key)
        return found

    def _cursor(self) -> Any:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection = driver_connection(pooled)
            pooled.detach()
            if self._engine.dialect.name == "sqlite":
                connection.isolation_level = None
            else:
                connection.autocommit = True
            self._connection = connection
        return self._connection.cursor()


def _compiled(dialect: Dialect, rule: Transition, ids: int, claims: int, lost: LostAttempt) -> tuple[DriverStatement, DriverStatement]:
    """See :meth:`CallRecord._statements_for`. Bind names: ``now``, ``claim_<n>``, ``id_<n>``."""
    now = bindparam("now", type_=MESSAGES.c.updated_at.type)
    held = [bindparam(f"claim_{n}", type_=MESSAGES.c.claim_id.type) for n in range(claims)]
    listed = MESSAGES.c.id.in_([bindparam(f"id_{n}", type_=MESSAGES.c.id.type) for n in range(ids)])
    settles: dict[str, Any] = {}
    if lost is LostAttempt.RESENT:
        settles = {"unsure_since": now, "possible_duplicate": true()}
    statement = (
        update(MESSAGES)
        .where(fenced(held, rule.source), listed)
        .values(
            status=literal_column(f"'{Status.CALLING.value}'"),
            attempts=MESSAGES.c.attempts + literal_column("1"),
            first_attempt_at=func.coalesce(MESSAGES.c.first_attempt_at, now),
            last_attempt_at=now,
            updated_at=now,
            **settles,
        )
    )
    look = select(MESSAGES.c.id).where(fenced(held, rule.target), listed)
    return DriverStatement.of(statement, dialect), DriverStatement.of(look, dialect)
