"""Logging helpers: phone numbers are masked wherever they reach a log line, a URL is named by its
origin (never its credentials or query), and a warning that may come by the thousand is counted
rather than repeated."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sms_worker.clock import Clock

_PHONE_LIKE = re.compile(r"\+?\d{8,15}")


def mask_phone(number: str | None) -> str:
    """Keep the country and network prefix and the last three digits: enough to debug, not to dial."""
    if not number:
        return "-"
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:6]}{'*' * (len(number) - 9)}{number[-3:]}"


def mask_numbers(text: str) -> str:
    """Mask every phone-like run of digits in free text (a provider's error message may quote the number)."""
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"sms_worker.{name}")


def origin(url: str) -> str:
    """Where ``url`` points, as a text a user may read: its origin (RFC 6454),
    ``scheme://host[:port]`` as written, without its user info, path, query or fragment, where
    credentials and tokens travel (a session-key login's password, a callback's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


@dataclass(slots=True)
class _Seen:
    logged_at: float
    """When a warning of the key was last logged, in seconds on the clock's monotonic time."""
    left_out: int
    """Warnings of the key not logged since."""


class RepeatedWarnings:
    """Warnings that may come in a flood (a provider posting every callback with a wrong token),
    each of a ``key`` (the account and the reason, say): the first of a key is logged at once;
    later ones at most one line every ``every`` seconds (``clock``'s monotonic time), which
    says how many like it were left out since the line before. Keys are remembered up to
    ``max_keys``, the oldest forgotten first (its next warning is logged as a first one), so
    keys an attacker chooses cannot grow memory. Safe to call from several threads."""

    def __init__(self, logger: logging.Logger, clock: Clock, every: float, max_keys: int = 1000) -> None:
        self._logger, self._clock, self._every, self._max_keys = logger, clock, every, max_keys
        self._seen: dict[Hashable, _Seen] = {}
        self._lock = threading.Lock()

    def warn(self, key: Hashable, text: str) -> None:
        """Log ``text`` at WARNING unless a warning of ``key`` was logged less than ``every``
        seconds ago (then it is only counted)."""
        now = self._clock.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.logged_at < self._every:
                seen.left_out += 1
                return
            if seen is None:
                text += f" (more like it: one line every {self._every:g} s, with a count)"
                if len(self._seen) >= self._max_keys:
                    del self._seen[next(iter(self._seen))]
            elif seen.left_out:
                text += f" ({seen.left_out} more like it since the line before)"
            self._seen[key] = _Seen(now, 0)
        self._logger.warning("%s", text)
