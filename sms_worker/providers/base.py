"""The contract every provider adapter keeps, and the error classes the retry policy reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sms_worker.status import Status


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    """Try again later on the retry schedule: timeouts, 5xx, 429, a provider-side ERROR."""
    REAUTHENTICATE = "reauthenticate"
    """The session is gone: log in again and resend at once, without using up a retry."""
    PERMANENT = "permanent"
    """Retrying cannot help: a final status now."""


class ProviderError(Exception):
    """A provider refused or failed a call, classified so the caller need not know the API."""

    def __init__(self, kind: ErrorKind, code: str, text: str, *, account_wide: bool = False, status: Status | None = None) -> None:
        super().__init__(f"{code}: {text}")
        self.kind, self.code, self.text, self.account_wide = kind, code, text, account_wide
        self.status = status or (Status.DENIED if code == "DENIED" else Status.UNDELIVERABLE)
        """The final canonical status this error leads to when it is permanent."""


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
    provider_message_id: str
    provider_status: str
    status: Status
    parts: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    provider_message_id: str
    provider_status: str
    status: Status
    delivered_at: datetime | None = None


class Provider(Protocol):
    """An adapter for one provider account. Implementations must be safe to share across threads."""

    name: str

    def send(self, message: OutboundMessage) -> Accepted:
        """Submit one message, or raise ProviderError."""
        ...

    def check(self, provider_message_id: str) -> StatusReport:
        """Ask the provider where a message is, or raise ProviderError."""
        ...

    def open(self) -> None:
        """Get ready for the first message (log in, where the API has sessions), so the first
        batch is not late; raise ProviderError if the account is unusable."""
        ...

    def close(self) -> None: ...
