"""The gateway's vocabulary and the ``POST /sms`` body: parsing, errors, orders and status words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final

from sms_worker.errors import SmsWorkerError
from sms_worker.sandbox.lifecycle import Message
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telekom_sk.parts import count_parts

QUALITIES: Final = ("N", "L", "LL")
MAX_TEXT: Final = 1000
"""Characters in ``message`` (the family's "max 1000 chars")."""
MAX_RECIPIENTS: Final = 1000
"""Recipients in one order; the document names no limit."""
SCHEDULE_FORMAT: Final = "%Y%m%d%H%M%S"

# code -> (HTTP status, message); every error body is {"result": "KO", "code", "message"}.
ERRORS: Final[dict[str, tuple[int, str]]] = {
    "UNAUTHORIZED": (401, "[Unauthorized] User_key, Token or Session_key are invalid or not provided"),
    "BAD_CREDENTIALS": (404, "[Not found] Credentials are incorrect"),
    "USER_KEY_NOT_FOUND": (404, "[Not found] The User_key was not found"),
    "ORDER_NOT_FOUND": (404, "[Not found] The order_id was not found"),
    "NOT_ENOUGH_CREDITS": (400, "Not enough credits to send the order"),
    "INVALID_RECIPIENT": (400, "Invalid recipient"),
    "INVALID_SENDER": (400, "A custom sender needs message_type N and at most 11 characters or 16 digits"),
    "INVALID_PARAMETER": (400, "Invalid parameter"),
    "MISSING_PARAMETER": (400, "Missing parameter"),
}

# canonical -> the family's recipient status word; a status without one is answered as it is.
STATUS_WORDS: Final[dict[State, str]] = {
    State.SCHEDULED: "SCHEDULED",
    State.QUEUED: "WAITING",
    State.SENT: "SENT",
    State.DELIVERED: "DLVRD",
    State.EXPIRED: "TIMEOUT",
    State.UNDELIVERABLE: "ERROR",
    State.DENIED: "KO",
}

_RECIPIENT = re.compile(r"\+?\d{6,15}")
_ALIAS = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9 .\-]{1,11}")
_NUMBER_SENDER = re.compile(r"\+?\d{1,16}")


class OrderError(SmsWorkerError, ValueError):
    """A ``POST /sms`` body the gateway refuses: its code, message and refused recipients."""

    def __init__(self, code: str, message: str, recipients: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.recipients = code, message, recipients


@dataclass(frozen=True, slots=True)
class OrderRequest:
    text: str
    quality: str
    recipients: list[str]
    sender: str | None
    return_credits: bool
    scheduled: datetime | None
    parts: int

    @property
    def cost(self) -> int:
        """One credit per part per recipient."""
        return self.parts * len(self.recipients)


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    internal_order_id: str
    entries: tuple[tuple[str, Message], ...]
    """(destination as sent, its message) in the order's recipient order."""


def recipients_of(body: Any) -> list[str]:
    """The recipient strings of a body, read leniently: fault rules and the log need them even
    when the body is refused."""
    if not isinstance(body, dict) or not isinstance(body.get("recipient"), list):
        return []
    return [number for number in body["recipient"] if isinstance(number, str)]


def parse_order(body: Any, zone: tzinfo) -> OrderRequest:
    if not isinstance(body, dict):
        raise OrderError("INVALID_PARAMETER", "The body must be a JSON object")
    text = body.get("message")
    if text is None or text == "":
        raise OrderError("MISSING_PARAMETER", "Parameter 'message' is required")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise OrderError("INVALID_PARAMETER", f"Parameter 'message' must be a string of at most {MAX_TEXT} characters")
    quality = body.get("message_type")
    if quality is None:
        raise OrderError("MISSING_PARAMETER", "Parameter 'message_type' is required")
    if quality not in QUALITIES:
        raise OrderError("INVALID_PARAMETER", "Parameter 'message_type' must be N, L or LL")
    recipients = _recipients(body.get("recipient"))
    sender = _sender(body.get("sender"), quality)
    return_credits = body.get("returnCredits", False)
    if not isinstance(return_credits, bool):
        raise OrderError("INVALID_PARAMETER", "Parameter 'returnCredits' must be true or false")
    parts = count_parts(text, None)
    if quality == "LL" and parts > 1:
        raise OrderError("INVALID_PARAMETER", "Parameter 'message' must fit one SMS (160 GSM characters) for message_type LL")
    scheduled = parse_schedule(body.get("scheduled_delivery_time"), zone)
    return OrderRequest(text, quality, recipients, sender, return_credits, scheduled, parts)


def parse_schedule(value: Any, zone: tzinfo) -> datetime | None:
    """``yyyyMMddHHmmss`` (the PHP and Node examples) or ISO 8601 (what the Python and C#
    examples' serializers write); a time without a zone is the gateway's."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        for parse in (lambda v: datetime.strptime(v, SCHEDULE_FORMAT), datetime.fromisoformat):
            try:
                moment = parse(value)
            except ValueError:
                continue
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    raise OrderError("INVALID_PARAMETER", "Parameter 'scheduled_delivery_time' must be yyyyMMddHHmmss")


def _recipients(value: Any) -> list[str]:
    if value is None or value == []:
        raise OrderError("MISSING_PARAMETER", "Parameter 'recipient' is required: a list of phone numbers")
    if not isinstance(value, list):
        raise OrderError("INVALID_PARAMETER", "Parameter 'recipient' must be a list of phone numbers")
    if len(value) > MAX_RECIPIENTS:
        raise OrderError("INVALID_PARAMETER", f"Parameter 'recipient' may list at most {MAX_RECIPIENTS} numbers")
    refused = [str(number) for number in value if not isinstance(number, str) or not _RECIPIENT.fullmatch(number)]
    if refused:
        raise OrderError("INVALID_RECIPIENT", f"Invalid recipient(s): {', '.join(refused)}", refused)
    return list(value)


def _sender(value: Any, quality: str) -> str | None:
    """The family: a custom sender (TPOA) only with high quality, ``N``; empty means the default."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or quality != "N" or not (_ALIAS.fullmatch(value) or _NUMBER_SENDER.fullmatch(value)):
        raise OrderError("INVALID_SENDER", ERRORS["INVALID_SENDER"][1])
    return value
