"""How a call to a provider failed, classified so the caller need not know the API: the kinds
the retry policy reads (:mod:`sms_worker.dispatch.policy`), the failure as a value, the same
raised, and the class of one provider error code in an adapter's table.

What a failure does to its account, one name each: *account-wide* (``account_wide``, with a
permanent kind: :attr:`Failure.pauses_account`) is the account's own failure, that every message
of it would meet (a bad key, no balance): the account pauses until an operator resumes it, and
the attempt does not count (:attr:`sms_worker.lifecycle.changes.Then.UNCOUNTED`). A failure that
*counts against the breaker* (:attr:`Failure.counts_against_breaker`: transient or ambiguous)
is a moment's failure of the account: its circuit breaker counts it, and the attempt counts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.status import Status


class ErrorKind(StrEnum):
    """What a failed call leads to; the retry policy (:mod:`sms_worker.dispatch.policy`) reads it."""

    TRANSIENT = "transient"
    """The provider did not take the message: try again later, on the retry schedule, on any
    account (5xx, 429, a connection refused, a provider-side ERROR)."""
    AMBIGUOUS = "ambiguous"
    """The request went out and no clear answer came back: the provider may have the message.
    The account is asked first where its API can say; else the message's policy resends it on
    the same account only, or gives up (:mod:`sms_worker.lifecycle.ambiguity`): a timeout, a connection
    lost, an unreadable answer, an adapter crash, a worker lost during the call."""
    REAUTHENTICATE = "reauthenticate"
    """The session is gone: log in again and resend at once, without using up a retry."""
    PERMANENT = "permanent"
    """Retrying cannot help: a final status now."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A call's failure, classified so the caller need not know the API: its kind, the
    provider's code (or ours: ``TIMEOUT``, ``BAD_RESPONSE``...) and text, whether every message of
    the account would meet it, and the final status it leads to when it is permanent."""

    kind: ErrorKind
    code: str
    text: str
    account_wide: bool = False
    status: Status = Status.UNDELIVERABLE

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"

    @property
    def pauses_account(self) -> bool:
        """Retrying cannot help and every message of the account would meet it (a bad key, an
        IP not allowed, no balance): the account pauses (:mod:`~sms_worker.providers.pause`),
        wherever it is met: a send, a status check, opening the account at worker start."""
        return self.kind is ErrorKind.PERMANENT and self.account_wide

    @property
    def counts_against_breaker(self) -> bool:
        """The account failed at the moment, and another attempt may succeed (transient or
        ambiguous): its circuit breaker counts it (:mod:`sms_worker.routing.breaker`)."""
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.AMBIGUOUS)


class ProviderError(SmsWorkerError):
    """A :class:`Failure` raised: inside adapters, and out of ``check``, ``verify`` and ``open``."""

    def __init__(self, kind: ErrorKind, code: str, text: str, *, account_wide: bool = False, status: Status = Status.UNDELIVERABLE) -> None:
        super().__init__(f"{code}: {text}")
        self.kind, self.code, self.text, self.account_wide, self.status = kind, code, text, account_wide, status

    @property
    def failure(self) -> Failure:
        return Failure(self.kind, self.code, self.text, self.account_wide, self.status)


@dataclass(frozen=True, slots=True)
class ErrorClass:
    """What one provider error code means: its kind, whether every message of the account would
    meet it, and the final status of a message it fails for good."""

    kind: ErrorKind
    account_wide: bool = False
    status: Status = Status.UNDELIVERABLE

    def error(self, code: str, text: str) -> ProviderError:
        """The failure of ``code`` with the provider's ``text`` (its code again, without one); a
        code that is blank (an error answer that names none) is :data:`NO_CODE`."""
        if not code.strip():
            code, text = NO_CODE, text or "the provider's error answer names no code"
        return ProviderError(self.kind, code, text or code, account_wide=self.account_wide, status=self.status)


NO_CODE: Final = "NO_CODE"
"""The code of a provider's error answer that names no code of its own."""


UNLISTED_CODE: Final = ErrorClass(ErrorKind.PERMANENT)
"""The class of a code not in the adapter's table: permanent for this message only, so an
answer the table does not list never burns retries nor pauses the account."""
