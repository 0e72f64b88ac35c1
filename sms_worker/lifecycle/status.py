"""The public vocabulary: where a message is (``Status``) and what its provider reports (``Delivery``).

Two words per message, never one word for two things:

``status`` is sms_worker's own lifecycle, the one the REST API and producer webhooks will show::

    scheduled ─► queued ─► claimed ─► calling ─► submitted ─► delivered
                   ▲          │          │           │    └──► undeliverable | rejected | expired | unknown
                   └──────────┘          └─► retrying ─► (queued again at its time)

    scheduled      waits for its send time (``send_after``)
    queued         due; waits for a worker, a rate-limit token or an available account
    claimed        a worker holds it; no provider call has started (recovery re-queues it)
    calling        a provider call may have started; its outcome is not written yet
                   (recovery treats it as an ambiguous attempt, like a timeout)
    retrying       an attempt failed; the next one is due at ``send_after``
    submitted      a provider accepted it; its ``delivery`` says what the provider reports since
    delivered      final: the provider reports it delivered
    undeliverable  final: it cannot be delivered (the provider or the network gave up, or the
                   retries ran out)
    rejected       final: refused, by sms_worker (no account may carry it) or by the provider or
                   the network (a denied sender, an invalid number)
    expired        final: its validity ended, before it could be sent or at the provider
    unknown        final: what became of it cannot be known (no receipt came in time, or an
                   ambiguous attempt its ``give-up`` policy does not repeat, or retries ran out
                   after one: :mod:`sms_worker.lifecycle.ambiguity`)

``delivery`` is the provider's report in our words, set once a provider has the message; the
provider's own word is kept beside it in ``provider_status``. A word an adapter does not know
maps to no delivery at all: the message stays where it was and its history records the word.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    CLAIMED = "claimed"
    CALLING = "calling"
    RETRYING = "retrying"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        return self in FINAL


class Delivery(StrEnum):
    """What a provider reports about a message it has."""

    QUEUED = "queued"
    """It holds the message and has not passed it on yet (waiting, scheduled, retrying there)."""
    SENT = "sent"
    """Passed on to the network; no receipt from the handset yet."""
    UNDETERMINED = "undetermined"
    """The provider says it cannot tell yet (its own word ``UNKNOWN``: Telekom SK, DT A2P; a
    ``failed`` Telefoon message with its error ``30008``, unknown error); a later report may
    still tell. Not the final status ``unknown`` (:attr:`Status.UNKNOWN`): the message stays
    ``submitted``. Spelt ``unknown`` in 0.1 (migration 0006 renames the stored reports)."""
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @classmethod
    def _missing_(cls, value: object) -> Delivery | None:
        """The 0.1 spelling ``unknown``, as a worker not yet upgraded may still write it while
        the new ones run (a rolling upgrade past migration 0006), reads as :attr:`UNDETERMINED`."""
        return cls.UNDETERMINED if value == "unknown" else None

    @property
    def status(self) -> Status:
        """The lifecycle status a message with this report has."""
        return _STATUS_OF_DELIVERY.get(self, Status.SUBMITTED)

    @property
    def failure_code(self) -> str | None:
        """The ``error_code`` of a message this report ends failed, one per report:
        ``REPORTED_UNDELIVERABLE``, ``REPORTED_REJECTED``, ``REPORTED_EXPIRED``; None for any other
        report (``delivered``, or one that is not final)."""
        return f"REPORTED_{self.name}" if self in _FAILED_REPORTS else None

    def failure_text(self, account: str, provider_status: str, provider_error: str | None = None) -> str:
        """Why a message this report ends failed, for its ``error_text`` and history: the account,
        our word and the provider's own (``telekom-sk reports it undeliverable (its status
        'UNDELIVERABLE')``), and the provider's reason where it gives one (``provider_error``:
        ``its error 30003: Unreachable destination handset``)."""
        told = f"its status {provider_status!r}" + (f"; its error {provider_error}" if provider_error else "")
        return f"{account} reports it {self.value} ({told})"

    @property
    def progress(self) -> int:
        """How far along: a report never moves a message back (a late ``queued`` after ``sent``),
        and a final report is furthest of all."""
        return 9 if self.status.final else _PROGRESS[self]


FINAL = frozenset({Status.DELIVERED, Status.UNDELIVERABLE, Status.REJECTED, Status.EXPIRED, Status.UNKNOWN})
WAITING = frozenset({Status.SCHEDULED, Status.QUEUED, Status.RETRYING})
"""Statuses of a message *waiting* to be sent (the one meaning of the word in sms_worker): a
worker may claim it; no provider has the message and no worker holds it."""
HELD = frozenset({Status.CLAIMED, Status.CALLING})
"""Statuses of a message a worker holds (``claim_id`` and ``dispatcher`` name the claim)."""

FINAL_VALUES = sorted(s.value for s in FINAL)
WAITING_VALUES = sorted(s.value for s in WAITING)
HELD_VALUES = sorted(s.value for s in HELD)

_STATUS_OF_DELIVERY = {
    Delivery.DELIVERED: Status.DELIVERED,
    Delivery.UNDELIVERABLE: Status.UNDELIVERABLE,
    Delivery.REJECTED: Status.REJECTED,
    Delivery.EXPIRED: Status.EXPIRED,
}
_PROGRESS = {Delivery.QUEUED: 1, Delivery.SENT: 2, Delivery.UNDETERMINED: 2}
_FAILED_REPORTS = frozenset({Delivery.UNDELIVERABLE, Delivery.REJECTED, Delivery.EXPIRED})
