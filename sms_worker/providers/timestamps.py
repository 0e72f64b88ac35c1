"""Provider timestamps, read one way for every adapter and every path (polled or called back).

A time without a zone means whatever its provider documents (or, where the document is silent,
what its adapter assumes and writes down); the host's own zone never enters. Each adapter
declares that once, as :attr:`~sms_worker.providers.base.AdapterBase.zone`, and passes it to
both readers here: :func:`parse_timestamp` for ISO 8601 / RFC 3339, :func:`parse_wall_clock`
for a provider's own wall-clock format (Telekom SK's ``YYYY-MM-DD HH:MM:SS``, the session-key
gateway's ``yyyyMMddHHmmss``). Both answer the moment in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def parse_timestamp(value: object, *, zone: tzinfo | None) -> datetime | None:
    """``value`` (ISO 8601, ``Z`` included) as an aware datetime in UTC; None when it is not a
    string in that format, or when it has no zone and ``zone`` is None (the provider's times
    carry their offset, as RFC 3339 requires, so one without is ambiguous and not guessed).
    A time without a zone is read in ``zone``."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        if zone is None:
            return None
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_wall_clock(value: object, time_format: str, zone: tzinfo) -> datetime | None:
    """``value`` in a provider's wall-clock ``time_format`` (:meth:`datetime.strptime`), read in
    ``zone``, as an aware datetime in UTC; None when it is empty or not in that format."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, time_format).replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        return None
