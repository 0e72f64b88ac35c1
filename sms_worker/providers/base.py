"""The contract every provider adapter keeps, and the error classes the retry policy reads."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sms_worker.errors import SmsWorkerError
from sms_worker.status import Delivery, Status


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    """Try again later on the retry schedule: timeouts, 5xx, 429, a provider-side ERROR."""
    REAUTHENTICATE = "reauthenticate"
    """The session is gone: log in again and resend at once, without using up a retry."""
    PERMANENT = "permanent"
    """Retrying cannot help: a final status now."""


AMBIGUOUS_CODES = frozenset({"TIMEOUT", "CONNECTION_LOST", "BAD_RESPONSE", "ADAPTER_CRASH", "WORKER_LOST"})
"""Transient failures after which the provider may have the message after all: the request went
out, and no clear answer came back."""


class ProviderError(SmsWorkerError):
    """A provider refused or failed a call, classified so the caller need not know the API."""

    def __init__(self, kind: ErrorKind, code: str, text: str, *, account_wide: bool = False, status: Status | None = None) -> None:
        super().__init__(f"{code}: {text}")
        self.kind, self.code, self.text, self.account_wide = kind, code, text, account_wide
        self.status = status or (Status.REJECTED if code == "DENIED" else Status.UNDELIVERABLE)
        """The final status this error leads to when it is permanent."""

    @property
    def ambiguous(self) -> bool:
        """The message may have been accepted: a retry must go to the same account, where the
        provider may know it, never to another one, which would send it a second time."""
        return self.code in AMBIGUOUS_CODES


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What an adapter needs to submit one message; copied out of the row before any HTTP call."""

    message_id: str
    recipient: str
    text: str
    sender: str | None = None
    priority: int = 2
    validity_minutes: int | None = None
    unicode: bool | None = None
    flash: bool = False
    delivery_time: datetime | None = None
    """Provider-side scheduling; sms_worker schedules itself and leaves it unset."""
    callback: bool | None = None
    group_id: int | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message: its id there, its word for the message's state, and that
    word in our vocabulary (None: a word the adapter does not know)."""

    provider_message_id: str
    provider_status: str
    delivery: Delivery | None
    parts: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One delivery report, polled or posted: ``delivery`` is None for a word the adapter does
    not know, which is recorded and changes nothing."""

    provider_message_id: str
    provider_status: str
    delivery: Delivery | None
    delivered_at: datetime | None = None


SendOutcome = Accepted | ProviderError


class Provider(Protocol):
    """An adapter for one provider account. Implementations must be safe to share across threads.

    Adapters read like httpx transports: one module per API, the shared plumbing (client, error
    mapping, JSON decoding) in :mod:`sms_worker.providers.plumbing`, never repeated.
    """

    name: str
    max_recipients: int
    """How many messages one request may carry; above 1 the dispatcher calls :meth:`send_many`."""

    def send(self, message: OutboundMessage) -> Accepted:
        """Submit one message, or raise ProviderError."""
        ...

    def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        """Submit messages that share one :meth:`group_key` in as few requests as the API allows;
        one outcome per message, in order. A failure of the whole request is that error for each."""
        ...

    def group_key(self, message: OutboundMessage) -> Hashable:
        """Messages with equal keys may travel in one request (same text, sender, quality...)."""
        ...

    def check(self, provider_message_id: str) -> StatusReport:
        """Ask the provider where a message is, or raise ProviderError."""
        ...

    def parse_callback(self, body: bytes, content_type: str) -> list[StatusReport]:
        """The status reports in a delivery callback the provider posted; ValueError if it is not one."""
        ...

    def classify(self, code: str, text: str) -> ProviderError:
        """A provider error code as an error class: transient, re-authenticate or permanent, and
        whether it is account-wide (every message of the account would meet it)."""
        ...

    def map_status(self, provider_status: str) -> Delivery | None:
        """The provider's word for a message's state in our vocabulary; None if it is not known."""
        ...

    def verify(self) -> str:
        """Prove the credentials work with the cheapest authenticated call; a one-line summary
        (balance, session...) for ``sms-worker providers check``, or ProviderError."""
        ...

    def open(self) -> None:
        """Get ready for the first message (log in, where the API has sessions), so the first
        batch is not late; raise ProviderError if the account is unusable."""
        ...

    def close(self) -> None: ...


class OneRecipientPerRequest:
    """For APIs that take one recipient per request: every message is its own group."""

    max_recipients = 1

    def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = []
        for message in messages:
            try:
                outcomes.append(self.send(message))  # type: ignore[attr-defined]
            except ProviderError as error:
                outcomes.append(error)
        return outcomes

    def group_key(self, message: OutboundMessage) -> Hashable:
        return message.message_id
