"""What a send tells its caller besides the ids: how the written messages will be queued.

The database row is the message and the Redis pointer only a hint (DESIGN-NOTES, Notify's rule):
once the rows are committed, a Redis that cannot take the pointers is not an error. The
messages are queued by the recovery sweep instead (:func:`sms_worker.recovery.sweep`), and the
result says so and when.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import redis
from kombu.exceptions import OperationalError as BrokerError

from sms_worker.config import Settings
from sms_worker.outages import describe_outage, first_line


@dataclass(frozen=True, slots=True)
class QueueDeferral:
    """The messages are written but not queued: Redis did not take their pointers."""

    problem: str
    """``unreachable`` (no connection), ``refused the write`` (Redis answered with an error, e.g.
    out of memory) or ``failed``."""
    detail: str
    """What the client said, first line: ``Error 111 connecting to 127.0.0.1:6379. Connection refused.``"""
    within_seconds: float
    """``stale_queued_seconds + sweep_interval_seconds`` (630 by default). Every
    ``sweep_interval_seconds`` the sweep queues a waiting message that has no pointer once it has
    been untouched ``stale_queued_seconds`` and past its ``send_at``, but only in a priority whose
    ready list is empty (while that list holds pointers, a message may simply be waiting its turn:
    :func:`~sms_worker.recovery.sweep`'s rule), at most 5,000 a sweep, oldest first. So the
    message is queued within this many seconds of the latest of: Redis being reachable, its
    ``send_at``, and its priority's ready list having drained; behind a backlog that never drains
    it waits, and it is never lost (the row is the message). A Redis that comes back empty is
    rebuilt from the database at once."""

    @classmethod
    def of(cls, error: Exception, settings: Settings) -> QueueDeferral:
        """The deferral ``error`` (raised while writing pointers or wake-ups) causes."""
        if describe_outage(error) is not None or isinstance(error, BrokerError | OSError):
            problem = "unreachable"
        elif isinstance(error, redis.RedisError):
            problem = "refused the write"
        else:
            problem = "failed"
        return cls(problem, first_line(error), settings.stale_queued_seconds + settings.sweep_interval_seconds)

    def __str__(self) -> str:
        return (
            f"queued; Redis {self.problem} ({self.detail}): the sweep will queue it within {self.within_seconds:g} s"
            " of the latest of Redis being reachable, its send time and its priority's ready queue having drained;"
            " it is not lost"
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to a send: every message is written (the ids, in the order given; a reused
    idempotency key gives the first message's id), and either queued now or left to the sweep."""

    ids: list[uuid.UUID]
    deferral: QueueDeferral | None = None
    """None: the pointers are in Redis and workers were woken."""

    @property
    def queued_by(self) -> Literal["redis", "sweep"]:
        """``redis`` (queued now) or ``sweep`` (queued by the recovery sweep, see ``deferral``)."""
        return "redis" if self.deferral is None else "sweep"

    @property
    def note(self) -> str | None:
        """What a user should be told besides the ids, or None."""
        return None if self.deferral is None else str(self.deferral)
