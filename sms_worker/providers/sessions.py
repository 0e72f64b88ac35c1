"""The login session of the APIs that have one (Telekom SK, the session-key gateway)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sms_worker.providers.failures import ErrorKind, ProviderError

S = TypeVar("S")
T = TypeVar("T")


class Sessions(Generic[S]):
    """One adapter's session, shared by its threads: opened on first use, renewed once it has
    been idle for ``idle`` seconds (the provider ends it after some minutes without calls),
    forgotten when the provider says it is gone, dropped at :meth:`close`.

    ``login`` opens a session (or raises ProviderError). ``keep_alive``, where the API has one,
    refreshes an idle session instead of logging in again; it raises ProviderError with
    ``REAUTHENTICATE`` if the session is gone already. Without it, an idle session is replaced.
    """

    def __init__(
        self,
        login: Callable[[], S],
        *,
        idle: float,
        keep_alive: Callable[[S], object] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._login = login
        self._idle = idle
        self._keep_alive = keep_alive
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._session: S | None = None
        self._last_used = 0.0

    @property
    def is_open(self) -> bool:
        return self._session is not None

    def current(self) -> S:
        """The session to call with: the one held, refreshed or replaced if it was idle too long,
        or a new one. Logging in happens under the lock: one login for all threads.

        A login or keep-alive that fails ambiguously (a timeout, an unreadable answer) is
        transient: no message went out with it, so the provider cannot have one."""
        with self._lock:
            try:
                if self._session is not None and self._monotonic() - self._last_used >= self._idle:
                    self._session = self._refreshed(self._session)
                if self._session is None:
                    self._session = self._login()
            except ProviderError as error:
                if error.kind is not ErrorKind.AMBIGUOUS:
                    raise
                raise ProviderError(ErrorKind.TRANSIENT, error.code, f"before sending, while opening the session: {error.text}") from None
            self._last_used = self._monotonic()
            return self._session

    def call(self, call: Callable[[S], T]) -> T:
        """``call`` with the current session; when the provider says the session is gone, forget
        it (unless another thread already has) and log in again, once. A second loss right after
        a fresh login is transient."""
        session = self.current()
        try:
            return self._used(call(session))
        except ProviderError as error:
            if error.kind is not ErrorKind.REAUTHENTICATE:
                raise
        self.forget(session)
        try:
            return self._used(call(self.current()))
        except ProviderError as error:
            if error.kind is ErrorKind.REAUTHENTICATE:
                raise ProviderError(ErrorKind.TRANSIENT, error.code, "session lost again right after logging in") from None
            raise

    def forget(self, session: S) -> None:
        with self._lock:
            if self._session == session:
                self._session = None

    def close(self) -> None:
        with self._lock:
            self._session = None

    def _refreshed(self, session: S) -> S | None:
        if self._keep_alive is None:
            return None
        try:
            self._keep_alive(session)
        except ProviderError as error:
            if error.kind is not ErrorKind.REAUTHENTICATE:
                raise
            return None
        return session

    def _used(self, result: T) -> T:
        with self._lock:
            self._last_used = self._monotonic()
        return result
