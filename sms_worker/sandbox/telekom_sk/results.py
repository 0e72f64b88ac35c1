"""Telekom SK's answer vocabulary: result envelopes, error codes and the status table.

Handlers build the JSON-shaped body the document shows; a codec renders it. An :class:`Outcome`
also carries what the submission log needs, so recording never has to re-parse a body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sms_worker.sandbox.states import State

OK: Final = "OK"
# From the document.
IP_NOT_ALLOWED: Final = "IP_NOT_ALLOWED"
SESSION_NOT_FOUND: Final = "SESSION_NOT_FOUND"
# Assumed: the document names no code for these cases.
INVALID_TOKEN: Final = "INVALID_TOKEN"
MISSING_PARAMETER: Final = "MISSING_PARAMETER"
INVALID_PARAMETER: Final = "INVALID_PARAMETER"
INVALID_REQUEST: Final = "INVALID_REQUEST"
MESSAGE_NOT_FOUND: Final = "MESSAGE_NOT_FOUND"

SESSION_NOT_FOUND_TEXT: Final = "Session was not found or has expired"

# code -> (status, description), the document's table of fifteen.
STATUS_TABLE: Final[dict[State, tuple[str, str]]] = {
    State.UNSENT: ("Not sent", "The message has not yet been processed."),
    State.SCHEDULED: ("Scheduled", "The message is scheduled for later delivery."),
    State.QUEUED: ("Queued", "The message has been accepted and is waiting to be sent."),
    State.SENDING: ("Sending", "The message is currently being sent."),
    State.SENT: ("Sent", "The message was sent to the target platform (SMS Center, RBM, Viber)."),
    State.DELIVERED: ("Delivered", "The message was delivered to the recipient."),
    State.EXPIRED: ("Expired", "The delivery timeout has expired."),
    State.DELETED: ("Deleted", "The message was removed from the delivery queue."),
    State.UNDELIVERABLE: ("Undeliverable", "The message cannot be delivered."),
    State.DENIED: ("Denied", "The message was rejected by the target platform."),
    State.IN_GROUP: ("In group", "The message is assigned to a cadence group."),
    State.READ: ("Read", "The message has been read."),
    State.PROCESSING: ("Processing", "The message is currently being processed."),
    State.ERROR: (
        "Error",
        "The message cannot be sent due to an error. The system will retry delivery up to 5 times within 60 minutes.",
    ),
    State.UNKNOWN: ("Unknown", "The message was sent, but the delivery status cannot be determined."),
}

_OK_RESULT: Final = {"status": "success", "description": "", "code": OK}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answer: a body for the codec (or a bare HTTP status) and what to log about it."""

    body: dict[str, Any]
    code: str
    http_status: int = 200
    accepted: bool = False
    message_id: int | None = None
    parts: int | None = None


def success(**fields: Any) -> dict[str, Any]:
    return {"result": dict(_OK_RESULT), **fields}


def error(code: str, description: str) -> Outcome:
    return Outcome({"result": {"status": "error", "description": description, "code": code}}, code)


def describe(code: str) -> str:
    """The text to send with an error code a fault rule names, from the status table if it is there."""
    if code in State.__members__:
        return STATUS_TABLE[State(code)][1]
    if code == SESSION_NOT_FOUND:
        return SESSION_NOT_FOUND_TEXT
    return f"Sandbox fault: {code}"
