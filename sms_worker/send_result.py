"""What a send tells its caller besides the ids: how the written messages will be queued.

The database row is the message and the Redis pointer only a hint (DESIGN-NOTES, Notify's rule):
once the rows are committed, a Redis that cannot take the pointers is not an error. The
messages are queued by the recovery sweep instead (:func:`sms_worker.recovery.sweep`), and the
result says so and how soon.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from kombu.exceptions import OperationalError as BrokerError

from sms_worker.config import Settings
from sms_worker.outages import describe_outage


@dataclass(frozen=True, slots=True)
class QueueDeferral:
    """The messages are written but not queued: Redis did not take their pointers."""

    problem: str
    """``unreachable`` (no connection), ``refused the write`` (Redis answered with an error, e.g.
    out of memory) or ``failed``."""
    detail: str
    """What the client said, first line: ``Error 111 connecting to 127.0.0.1:6379. Connection refused.``"""
    within_seconds: float
    """The sweep queues a waiting message once it has been untouched ``stale_queued_seconds``
    (and its priority's ready list is empty), checking every ``sweep_interval_seconds``; so this
    many seconds after it was written, or after its ``send_at`` if later, once Redis is back.
    A Redis that comes back empty is rebuilt from the database at once."""

    @classmethod
    def of(cls, error: Exception, settings: Settings) -> QueueDeferral:
        """The deferral ``error`` (raised while writing pointers or wake-ups) causes."""
        if describe_outage(error) is not None or isinstance(error, BrokerError | OSError):
            problem = "unreachable"
        elif isinstance(error, redis.RedisError):
            problem = "refused the write"
        else:
            problem = "failed"
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return cls(problem, detail, settings.stale_queued_seconds + settings.sweep_interval_seconds)

    def __str__(self) -> str:
        return (
            f"queued; Redis {self.problem} ({self.detail}): the sweep will queue it within {self.within_seconds:g} s"
            " of Redis being reachable (of its send time, if that is later)"
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to a send: every message is written (the ids, in the order given; a reused
    idempotency key gives the first message's id), and either queued now or left to the sweep."""

    ids: list[uuid.UUID]
    deferral: QueueDeferral | None = None
    """None: the pointers are in Redis and workers were woken."""

    @property
    def queued_by(self) -> str:
        """``redis`` (queued now) or ``sweep`` (queued by the recovery sweep, see ``deferral``)."""
        return "redis" if self.deferral is None else "sweep"

    @property
    def note(self) -> str | None:
        """What a user should be told besides the ids, or None."""
        return None if self.deferral is None else str(self.deferral)
