"""Telekom SK sessions: a ``session_id`` lives while it is used at least every 15 minutes."""

from __future__ import annotations

import uuid

from sms_worker.clock import Clock

SESSION_TTL_SECONDS = 15 * 60


class SessionStore:
    """Session ids with the clock time each was last used, so expiry follows the injected clock."""

    def __init__(self, clock: Clock, ttl: float = SESSION_TTL_SECONDS) -> None:
        self._clock = clock
        self._ttl = ttl
        self._last_used: dict[str, float] = {}

    def open(self) -> str:
        now = self._clock.now().timestamp()
        # Sweep on login, not per request: logins are rare, so the map stays bounded cheaply.
        self._last_used = {sid: t for sid, t in self._last_used.items() if now - t < self._ttl}
        session_id = str(uuid.uuid4())
        self._last_used[session_id] = now
        return session_id

    def touch(self, session_id: str) -> bool:
        """Whether the session is alive; a live one is refreshed, an expired one forgotten."""
        last = self._last_used.get(session_id)
        if last is None:
            return False
        now = self._clock.now().timestamp()
        if now - last >= self._ttl:
            del self._last_used[session_id]
            return False
        self._last_used[session_id] = now
        return True

    def clear(self) -> None:
        self._last_used.clear()
