"""Reading and validating Telekom SK request parameters, whatever codec they arrived in.

Values may be typed (a JSON number or boolean) or strings (a query string, XML text), so every
reader accepts both spellings. The first problem found is reported, naming the parameter and
the reason, as :class:`ParameterError` with ``MISSING_PARAMETER`` or ``INVALID_PARAMETER``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final

from sms_worker.errors import SmsWorkerError
from sms_worker.sandbox.telekom_sk.results import INVALID_PARAMETER, MISSING_PARAMETER

# Assumed: the document shows 4219xxxxxxxx, +4219xxxxxxxx and 09xxxxxxxx; any 6-15 digits pass.
_PHONE_RE: Final = re.compile(r"\+?\d{6,15}")
_INTEGER_RE: Final = re.compile(r"[+-]?\d+")
_DELIVERY_TIME_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_FALSE_VALUES: Final = (False, 0, "0", "")
MESSAGE_TYPES: Final = ("standard", "flash")


class ParameterError(SmsWorkerError, ValueError):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class SendRequest:
    to: str
    text: str
    sender: str | None
    priority: int
    validity: int
    delivery_time: datetime | None
    unicode: bool | None
    """None when not given: the encoding is then detected from the text."""
    callback: bool
    type: str
    group_id: int | None


def parse_send(params: dict[str, Any], zone: tzinfo) -> SendRequest:
    """The ``send_message`` parameters, checked in the document's order."""
    to = _string(params, "to", required=True)
    if not _PHONE_RE.fullmatch(to):
        raise _invalid("to", "must be a phone number of 6 to 15 digits, optionally with a leading +")
    text = _string(params, "text", required=True)
    if not text:
        raise _invalid("text", "must not be empty")
    sender = _string(params, "from") or None
    callback = flag(params.get("callback"))
    delivery_time = _delivery_time(params, zone)
    priority = _ranged(params, "priority", default=2, low=1, high=3)
    validity = _ranged(params, "validity", default=1440, low=1, high=1440)
    message_type = _string(params, "type") or "standard"
    if message_type not in MESSAGE_TYPES:
        raise _invalid("type", "must be standard or flash")
    return SendRequest(
        to=to,
        text=text,
        sender=sender,
        priority=priority,
        validity=validity,
        delivery_time=delivery_time,
        unicode=flag(params.get("unicode")),
        callback=True if callback is None else callback,
        type=message_type,
        group_id=_integer(params, "groupId"),
    )


def parse_message_id(params: dict[str, Any]) -> int:
    message_id = _integer(params, "message_id")
    if message_id is None:
        raise _missing("message_id")
    return message_id


def parse_page(params: dict[str, Any]) -> tuple[int, int | None]:
    """``sms-groups``' ``startFrom`` (default 0) and ``limit`` (default: all)."""
    start = _integer(params, "startFrom") or 0
    limit = _integer(params, "limit")
    if start < 0:
        raise _invalid("startFrom", "must not be negative")
    if limit is not None and limit < 0:
        raise _invalid("limit", "must not be negative")
    return start, limit


def parse_phone_number(params: dict[str, Any]) -> str:
    number = _string(params, "phone_number", required=True).strip()
    if not number:
        raise _missing("phone_number")
    return number


def flag(value: Any) -> bool | None:
    """The document's rule: any value except false, 0, "0" or "" is true; null means not given.

    The string ``"false"`` counts as false too, because that is how a query string or the
    document's own XML example (``<unicode>false</unicode>``) spells it.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value not in _FALSE_VALUES and value.strip().lower() != "false"
    return value not in _FALSE_VALUES


def _string(params: dict[str, Any], name: str, required: bool = False) -> str:
    value = params.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(name, "must be a string")
    return str(value)


def _integer(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INTEGER_RE.fullmatch(value))):
        raise _invalid(name, "must be an integer")
    return int(value)


def _ranged(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    number = _integer(params, name)
    if number is None:
        return default
    if not low <= number <= high:
        raise _invalid(name, f"must be an integer from {low} to {high}")
    return number


def _delivery_time(params: dict[str, Any], zone: tzinfo) -> datetime | None:
    value = _string(params, "delivery_time")
    if not value:
        return None
    if _DELIVERY_TIME_RE.fullmatch(value):
        try:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
        except ValueError:
            pass
    raise _invalid("delivery_time", "must be a date and time in the format YYYY-MM-DD HH:MM:SS")


def _missing(name: str) -> ParameterError:
    return ParameterError(MISSING_PARAMETER, f"Parameter '{name}' is required")


def _invalid(name: str, reason: str) -> ParameterError:
    return ParameterError(INVALID_PARAMETER, f"Parameter '{name}' {reason}")
