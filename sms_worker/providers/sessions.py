"""Calls that need a login session, for the APIs that have one (Telekom SK, the session-key gateway)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sms_worker.providers.base import ErrorKind, ProviderError

S = TypeVar("S")
T = TypeVar("T")


def call_with_relogin(call: Callable[[S], T], session: Callable[[], S], forget: Callable[[S], None]) -> T:
    """``call`` with the current ``session`` (which logs in when there is none); when the provider
    says the session is gone, ``forget`` it (unless another thread already has) and log in again,
    once. A second loss right after a fresh login is transient."""
    current = session()
    try:
        return call(current)
    except ProviderError as error:
        if error.kind is not ErrorKind.REAUTHENTICATE:
            raise
    forget(current)
    try:
        return call(session())
    except ProviderError as error:
        if error.kind is ErrorKind.REAUTHENTICATE:
            raise ProviderError(ErrorKind.TRANSIENT, error.code, "session lost again right after logging in") from None
        raise
