"""The sandbox's own message states: Telekom SK API v1's fifteen status codes.

Every emulated provider keeps its messages in these states and answers in its own words
(``telefoon/vocabulary.py``, each emulator's table); fault rules name them (``final_status``).
They belong to the emulation, not to sms_worker, whose vocabulary is :mod:`sms_worker.lifecycle.status`.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
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
