"""The canonical status vocabulary: Telekom SK API v1's fifteen codes.

Every provider's own status is recorded beside the canonical one. Before a provider has the
message, sms_worker uses the same words for its own stages: ``SCHEDULED`` (waiting for its
send time), ``UNSENT`` (in the ready queue), ``PROCESSING`` (claimed by a worker, provider call
in flight) and ``ERROR`` (a transient failure, a retry is due).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    UNSENT = "UNSENT"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIVERABLE = "UNDELIVERABLE"
    DENIED = "DENIED"
    IN_GROUP = "IN_GROUP"
    READ = "READ"
    PROCESSING = "PROCESSING"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


FINAL = frozenset({Status.DELIVERED, Status.EXPIRED, Status.DELETED, Status.UNDELIVERABLE, Status.DENIED, Status.READ, Status.UNKNOWN})
CLAIMABLE = frozenset({Status.UNSENT, Status.SCHEDULED, Status.ERROR})
"""Statuses a worker may claim for sending, and only while no provider holds the message.

Once a provider has it (``provider_message_id`` set) the status is the provider's own word,
even where it reads like one of sms_worker's stages (``ERROR``: the provider is retrying)."""
FINAL_VALUES = sorted(s.value for s in FINAL)
CLAIMABLE_VALUES = sorted(s.value for s in CLAIMABLE)
NON_FINAL_VALUES = sorted(s.value for s in Status if s not in FINAL)

_PROGRESS = {Status.SCHEDULED: 0, Status.QUEUED: 1, Status.IN_GROUP: 1, Status.ERROR: 1, Status.SENDING: 2, Status.SENT: 3}


def progress(status: str) -> int:
    """How far along a message the provider has is: a report never moves it back (a late
    QUEUED callback after SENT), and a final status is furthest of all."""
    return 9 if status in FINAL_VALUES else _PROGRESS.get(Status(status), 0)
