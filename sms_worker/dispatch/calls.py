"""The record that calls may start: one statement per group of calls, on a connection of its own.

It is the one write between deciding to call and calling, so it is kept as short as a write can
be: a hand-written ``UPDATE`` on a database connection this process keeps for it, in
autocommit. No pool checkout, no transaction to open and close, and no lock held while this
thread waits for the interpreter between two statements. (Built with SQLAlchemy's expression
language and a pooled transaction, this write cost the dispatcher a quarter of its rate.)
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Engine

from sms_worker.db.bulk import driver_connection, driver_values, placeholder, read_uuid
from sms_worker.dispatch.batch import Absent, NearMatch
from sms_worker.dispatch.sql import MESSAGES
from sms_worker.lifecycle.status import Status


class LostAttempt(Enum):
    """What the calling statement does to an earlier ambiguous attempt its provider was asked
    about (:mod:`~sms_worker.dispatch.lookup`), so that a worker lost during this call leaves the
    window in question right."""

    KEPT = "kept"
    """Not asked: the row keeps ``unsure_since``."""
    SETTLED = "settled"
    """The provider had not the message (:class:`~.batch.Absent`): no longer unsure."""
    NEAR_MATCH = "near match"
    """It lists a near match, sent again by its policy (resend): unsure since this attempt, and a
    possible duplicate from now on. A call not made after all puts both back
    (:class:`~.stages.record.Record`): only a call that may go out makes a second copy."""

    @classmethod
    def of(cls, asked: Absent | NearMatch | None) -> LostAttempt:
        """What asking said (an item's ``asked``), as the statement needs it."""
        if isinstance(asked, Absent):
            return cls.SETTLED
        return cls.NEAR_MATCH if isinstance(asked, NearMatch) else cls.KEPT


class CallRecord:
    """Turns claimed rows to ``calling`` for this process, fenced by their claims."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._connection: Any = None
        self._lock = threading.Lock()

    def start(self, ids: list[uuid.UUID], claims: list[uuid.UUID], now: datetime, *, lost: LostAttempt = LostAttempt.KEPT) -> set[uuid.UUID]:
        """Count an attempt and set ``calling`` on each row of ``ids`` still held by one of
        ``claims``, and do to an earlier lost attempt what ``lost`` says; returns the ids it
        turned. Raises if the database is away.

        The connection kept from an earlier call may have died meanwhile (the database was
        restarted): the statement is then tried once more on a new one, so the first batch
        after an outage is called at once rather than deferred. Trying again is safe even if
        the first try was applied and only its answer lost: the rows it turned are no longer
        ``claimed``, and the look that follows finds them ``calling`` under these claims, with
        their attempt counted once."""
        mark = placeholder(self._dialect)
        settles, settled = "", []
        if lost is LostAttempt.SETTLED:
            settles = ", unsure_since = NULL"
        elif lost is LostAttempt.NEAR_MATCH:
            settles, settled = f", unsure_since = {mark}, possible_duplicate = TRUE", [("unsure_since", now)]
        update = (
            f"UPDATE {MESSAGES.name} SET status = '{Status.CALLING.value}', attempts = attempts + 1, "
            f"first_attempt_at = COALESCE(first_attempt_at, {mark}), last_attempt_at = {mark}, updated_at = {mark}{settles} "
            f"WHERE COALESCE(status, '') = '{Status.CLAIMED.value}' AND {self._held(ids, claims)}"
        )
        values = [("first_attempt_at", now), ("last_attempt_at", now), ("updated_at", now), *settled, *self._held_values(ids, claims)]
        select = f"SELECT id FROM {MESSAGES.name} WHERE COALESCE(status, '') = '{Status.CALLING.value}' AND {self._held(ids, claims)}"
        with self._lock:
            kept = self._connection is not None
            while True:
                try:
                    cursor = self._cursor()
                    cursor.execute(update, driver_values(self._dialect, MESSAGES, values))
                    if cursor.rowcount == len(ids):
                        return set(ids)
                    cursor.execute(select, driver_values(self._dialect, MESSAGES, self._held_values(ids, claims)))
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

    def _cursor(self) -> Any:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection = driver_connection(pooled)
            pooled.detach()
            if self._dialect == "sqlite":
                connection.isolation_level = None
            else:
                connection.autocommit = True
            self._connection = connection
        return self._connection.cursor()

    def _held(self, ids: list[uuid.UUID], claims: list[uuid.UUID]) -> str:
        mark = placeholder(self._dialect)
        return f"claim_id IN ({', '.join([mark] * len(claims))}) AND id IN ({', '.join([mark] * len(ids))})"

    @staticmethod
    def _held_values(ids: list[uuid.UUID], claims: list[uuid.UUID]) -> list[tuple[str, Any]]:
        return [*(("claim_id", claim) for claim in claims), *(("id", message_id) for message_id in ids)]
