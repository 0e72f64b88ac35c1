"""ISO 8601 / RFC 3339 timestamps in provider answers and callbacks, read one way for every adapter.

What a time without a zone means is each provider's own (documented or assumed) behaviour, so
every caller names it: ``zoneless="reject"`` (ambiguous, not guessed: None), ``"utc"`` (the
API documents UTC), ``"keep"`` (returned naive, as parsed) or ``"local"`` (the host's local
zone, as :meth:`datetime.astimezone` reads a naive time). Wall-clock formats that are not ISO
8601 (Telekom SK's ``YYYY-MM-DD HH:MM:SS``, the session-key gateway's ``yyyyMMddHHmmss``) stay
with their adapters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

ZoneLess = Literal["reject", "utc", "keep", "local"]


def parse_timestamp(value: object, *, zoneless: ZoneLess, to_utc: bool = False) -> datetime | None:
    """``value`` as a datetime, or None when it is not a string in ISO 8601 (``Z`` included).

    The offset the provider wrote is kept unless ``to_utc`` asks for the moment in UTC.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        if zoneless == "reject":
            return None
        if zoneless == "utc":
            moment = moment.replace(tzinfo=UTC)
        elif zoneless == "local":
            moment = moment.astimezone()
    return moment.astimezone(UTC) if to_utc else moment
