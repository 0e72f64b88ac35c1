"""The Dexatel SMS API as the sandbox serves it: send, status and balance (see the package
docstring for what is documented and what is assumed)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sms_worker.clock import Clock
from sms_worker.sandbox.answers import Answer, ErrorTable, error_envelope, json_body, preempt, respond, utc_timestamp
from sms_worker.sandbox.faults import CALLBACK, REQUEST_KINDS, WORDED, FaultEngine, FaultKind, FaultRule, final_status, spelled
from sms_worker.sandbox.lifecycle import Message, MessageStore
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telekom_sk.parts import count_parts
from sms_worker.sandbox.webhooks import Webhooks

PROVIDER: Final = "dexatel"
SEND: Final = "send"
STATUS: Final = "status"
BALANCE: Final = "balance"

CURRENCY: Final = "EUR"
PRICE_PER_PART: Final = 0.05
MAX_PARTS: Final = 10
VALIDITY_MINUTES: Final = 1440
ID_PREFIX: Final = "msg_"

# Error code -> (HTTP status, message).
ERRORS: Final[dict[str, tuple[int, str]]] = {
    "INVALID_REQUEST": (400, "The request is not valid"),
    "INVALID_NUMBER": (400, "The recipient number is not valid"),
    "INVALID_TEXT": (400, "The message text is not valid"),
    "INVALID_SENDER": (400, "The sender ID is not valid"),
    "UNAUTHORIZED": (401, "Invalid or missing API key"),
    "INSUFFICIENT_FUNDS": (402, "Insufficient funds"),
    "MESSAGE_NOT_FOUND": (404, "Message not found"),
    "RATE_LIMITED": (429, "Too many requests"),
    "INTERNAL_ERROR": (500, "Internal server error"),
    "SERVICE_UNAVAILABLE": (503, "Service temporarily unavailable"),
}
error: Final = ErrorTable(ERRORS, error_envelope, unknown=lambda code: code)
"""Dexatel's error envelope; a code it does not know (from a fault rule) is a 400 whose message is the code."""

# Canonical status -> Dexatel's word. The document names five; "unknown" is assumed.
WORDS: Final[dict[State, str]] = {
    **dict.fromkeys((State.UNSENT, State.SCHEDULED, State.QUEUED, State.PROCESSING, State.IN_GROUP), "queued"),
    **dict.fromkeys((State.SENDING, State.SENT, State.ERROR), "sent"),
    **dict.fromkeys((State.DELIVERED, State.READ), "delivered"),
    State.DENIED: "failed",
    **dict.fromkeys((State.UNDELIVERABLE, State.EXPIRED, State.DELETED), "undelivered"),
    State.UNKNOWN: "unknown",
}

_SENDER_RE: Final = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9 ]{1,11}|\+?[0-9]{1,15}")
_E164_RE: Final = re.compile(r"\+[1-9][0-9]{6,14}")
_SEND_KINDS: Final = REQUEST_KINDS - {FaultKind.SESSION_LOSS}
_READ_KINDS: Final = _SEND_KINDS - {FaultKind.FINAL_STATUS}
_DOCUMENTED_FIELDS: Final = frozenset({"from", "to", "text"})


class Dexatel:
    """Bearer keys from settings, one prepaid balance, messages whose status follows the clock."""

    name: ClassVar[str] = PROVIDER
    endpoints: ClassVar[frozenset[str]] = frozenset({SEND, STATUS, BALANCE, CALLBACK})
    checks: ClassVar[frozenset[str]] = frozenset({STATUS})

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None:
        self._keys = settings.dexatel_api_keys
        self._messages = MessageStore(clock, settings.sent_after, settings.delivered_after)
        self._recipients: dict[int, str] = {}
        self._recorder = recorder
        self._faults = faults
        self._starting_balance = settings.dexatel_balance
        self._balance = self._starting_balance
        self._webhook_url = settings.dexatel_webhook_url
        self.webhooks = Webhooks(clock, PROVIDER)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/sms/send", self._endpoint(self._send), methods=["POST"]),
            Route("/v1/sms/{message_id}", self._endpoint(self._status), methods=["GET"]),
            Route("/v1/account/balance", self._endpoint(self._account_balance), methods=["GET"]),
        ]

    def reset(self) -> None:
        self._messages.clear()
        self._recipients.clear()
        self._balance = self._starting_balance
        self.webhooks.clear()

    def _endpoint(self, handler: Callable[[Request], Awaitable[tuple[Answer, FaultRule | None]]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            answer, rule = await handler(request)
            return await respond(answer, rule)

        return endpoint

    async def _send(self, request: Request) -> tuple[Answer, FaultRule | None]:
        body = await json_body(request)
        payload = body if isinstance(body, dict) else None
        fields = payload or {}
        rule = self._faults.take(PROVIDER, SEND, fields.get("to"), _SEND_KINDS)
        answer = preempt(rule, error) or self._refuse(request) or self._accept(request, payload, rule)
        params = {key: value for key, value in fields.items() if key not in _DOCUMENTED_FIELDS}
        self._recorder.record(PROVIDER, SEND, answer, to=fields.get("to"), sender=fields.get("from"), text=fields.get("text"), params=params)
        return answer, rule

    async def _status(self, request: Request) -> tuple[Answer, FaultRule | None]:
        wire_id = request.path_params["message_id"]
        message = self._find(wire_id)
        recipient = self._recipients.get(message.id) if message is not None else None
        rule = self._faults.take(PROVIDER, STATUS, recipient, _READ_KINDS | WORDED)
        answer = preempt(rule, error) or self._refuse(request)
        if answer is None:
            answer = (
                error("MESSAGE_NOT_FOUND", f"Message {wire_id} was not found")
                if message is None
                else Answer(200, self._describe(message, rule), "OK")
            )
        return answer, rule

    async def _account_balance(self, request: Request) -> tuple[Answer, FaultRule | None]:
        rule = self._faults.take(PROVIDER, BALANCE, None, _READ_KINDS)
        answer = preempt(rule, error) or self._refuse(request)
        return answer or Answer(200, {"balance": round(self._balance, 2), "currency": CURRENCY}, "OK"), rule

    def _refuse(self, request: Request) -> Answer | None:
        """401 unless the request carries ``Authorization: Bearer <a known key>``."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip() in self._keys:
            return None
        return error("UNAUTHORIZED")

    def _accept(self, request: Request, payload: dict[str, Any] | None, rule: FaultRule | None) -> Answer:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return error("INVALID_REQUEST", "Content-Type must be application/json")
        if payload is None:
            return error("INVALID_REQUEST", "The body must be a JSON object")
        sender, to, text = payload.get("from"), payload.get("to"), payload.get("text")
        if not isinstance(sender, str) or not _SENDER_RE.fullmatch(sender):
            return error("INVALID_SENDER", "'from' must be 1 to 11 letters, digits or spaces with a letter or digit, or a phone number")
        if not isinstance(to, str) or not _E164_RE.fullmatch(to):
            return error("INVALID_NUMBER", "'to' must be a phone number in E.164 format, e.g. +15551234567")
        if not isinstance(text, str) or not text:
            return error("INVALID_TEXT", "'text' must be a non-empty string")
        parts = count_parts(text, None)
        if parts > MAX_PARTS:
            return error("INVALID_TEXT", f"'text' needs {parts} parts; at most {MAX_PARTS} are allowed")
        cost = parts * PRICE_PER_PART
        if cost > self._balance:
            return error("INSUFFICIENT_FUNDS", f"Balance {self._balance:.2f} {CURRENCY} does not cover {cost:.2f} {CURRENCY}")
        message = self._messages.accept(VALIDITY_MINUTES, None, final_status(rule))
        self._balance -= cost
        self._recipients[message.id] = to
        if self._webhook_url:
            self.webhooks.post_at(self._webhook_url, message.final_at, lambda: self._report(message))
        body = self._describe(message)
        del body["updated_at"]
        return Answer(200, body, "OK", message_id=body["message_id"], parts=parts)

    def _find(self, wire_id: str) -> Message | None:
        digits = wire_id.removeprefix(ID_PREFIX)
        return self._messages.get(int(digits)) if wire_id.startswith(ID_PREFIX) and digits.isdigit() else None

    def _report(self, message: Message) -> dict[str, Any]:
        """The webhook body (assumed, as the adapter reads it): the status answer, ``timestamp`` for
        ``updated_at``; a ``spelling`` rule for ``callback`` respells its word."""
        rule = self._faults.take(PROVIDER, CALLBACK, self._recipients[message.id], WORDED)
        report = self._describe(message, rule)
        report["timestamp"] = report.pop("updated_at")
        return report

    def _describe(self, message: Message, rule: FaultRule | None = None) -> dict[str, Any]:
        """The status answer: the send answer's fields plus the moment of the last change; its
        word as a ``spelling`` ``rule`` writes it."""
        now = self._messages.now()
        changed = max(moment for moment in (message.due, message.sent_at, message.final_at) if moment <= now)
        return {
            "message_id": f"{ID_PREFIX}{message.id}",
            "status": spelled(rule, WORDS[message.status_at(now)]),
            "recipient": self._recipients[message.id],
            "updated_at": utc_timestamp(changed, "milliseconds"),
        }
