"""Telefoon's answer vocabulary: the assumed error codes and the Message status words."""

from __future__ import annotations

from typing import Final

from sms_worker.sandbox.answers import ErrorTable
from sms_worker.sandbox.states import State

# Request errors: code -> (HTTP status, error_message). Assumed, modelled on Twilio's codes.
INVALID_REQUEST: Final = 20001
AUTHENTICATION_FAILED: Final = 20003
NOT_FOUND: Final = 20404
INVALID_TO: Final = 21211
INVALID_FROM: Final = 21212
BODY_REQUIRED: Final = 21602
FROM_REQUIRED: Final = 21603
TO_REQUIRED: Final = 21604
INVALID_CALLBACK: Final = 21609
# Delivery errors, on failed/undelivered messages.
EXPIRED: Final = 30001
UNREACHABLE: Final = 30003
FILTERED: Final = 30007
UNKNOWN_ERROR: Final = 30008

ERRORS: Final[dict[int, tuple[int, str]]] = {
    INVALID_REQUEST: (400, "Invalid request"),
    AUTHENTICATION_FAILED: (401, "Authentication failed: missing or invalid X-API-Key"),
    NOT_FOUND: (404, "The requested message was not found"),
    20429: (429, "Too many requests"),
    20500: (500, "Internal server error"),
    20503: (503, "Service unavailable"),
    INVALID_TO: (400, "The 'to' number is not a valid E.164 phone number"),
    INVALID_FROM: (400, "The 'from' or 'sender_id' is not a valid sender: an E.164 number or at most 11 letters and digits"),
    BODY_REQUIRED: (400, "A message body is required"),
    FROM_REQUIRED: (400, "A 'from' sender is required"),
    TO_REQUIRED: (400, "A 'to' number is required"),
    INVALID_CALLBACK: (400, "The status_callback is not an http(s) URL"),
    21610: (400, "The recipient has unsubscribed (replied STOP)"),
    30002: (403, "The account is suspended"),
    EXPIRED: (400, "The message expired before it could be delivered"),
    UNREACHABLE: (400, "Unreachable destination handset"),
    30005: (400, "Unknown destination handset"),
    FILTERED: (400, "The message was filtered by the carrier"),
    UNKNOWN_ERROR: (400, "Unknown error"),
}

# Canonical status -> (Telefoon status, error_code) for the states a sandbox message passes.
PROGRESS: Final = (State.QUEUED, State.SENDING, State.SENT)
"""The states before the final one, in order; a ``final_status`` fault may stop a message in one."""
WORDS: Final[dict[State, tuple[str, int | None]]] = {
    State.SCHEDULED: ("queued", None),
    State.QUEUED: ("queued", None),
    State.SENDING: ("sending", None),
    State.SENT: ("sent", None),
    State.DELIVERED: ("delivered", None),
    State.READ: ("delivered", None),
    State.UNDELIVERABLE: ("undelivered", UNREACHABLE),
    State.EXPIRED: ("undelivered", EXPIRED),
    State.DENIED: ("failed", FILTERED),
}
OTHER_FINAL: Final = ("failed", UNKNOWN_ERROR)
"""Any other canonical final status a fault names (DELETED, UNKNOWN, ERROR...)."""

error: Final = ErrorTable(
    ERRORS,
    lambda code, message: {"error_code": code, "error_message": message},
    unknown=lambda code: f"Sandbox fault: error {code}",
)
"""An error answer with its HTTP status and JSON body; a code outside the table answers 400."""
