"""The Deutsche Telekom A2P API: send, delivery report and balance, on a prepaid account."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar, Final

import phonenumbers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sms_worker.clock import Clock
from sms_worker.errors import SmsWorkerError
from sms_worker.sandbox.answers import Answer, ErrorTable, error_envelope, json_body, preempt, respond, utc_timestamp
from sms_worker.sandbox.faults import WORDED, FaultEngine, FaultKind, FaultRule, final_status, spelled
from sms_worker.sandbox.lifecycle import Message, MessageStore
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telekom_sk.parts import count_parts

PROVIDER: Final = "dt-a2p"
SEND: Final = "send"
REPORT: Final = "report"
BALANCE: Final = "balance"
CURRENCY: Final = "EUR"
VALIDITY_MINUTES: Final = 1440
"""The document names no validity; the platform is assumed to try for 24 hours."""
OK: Final = "OK"

# code -> (HTTP status, what the platform says)
ERRORS: Final[dict[str, tuple[int, str]]] = {
    "INVALID_REQUEST": (400, "The body must be a JSON object"),
    "MISSING_PARAMETER": (400, "A required field is missing"),
    "INVALID_PARAMETER": (400, "A field has a wrong value"),
    "INVALID_RECIPIENT": (400, "The recipient is not a valid phone number in E.164 format"),
    "INVALID_API_KEY": (401, "The X-API-Key header does not hold a valid API key"),
    "INSUFFICIENT_BALANCE": (402, "The prepaid balance does not cover this request"),
    "SENDER_NOT_VERIFIED": (403, "The sender ID has not been verified"),
    "ALPHANUMERIC_SENDER_NOT_ALLOWED": (403, "Alphanumeric sender IDs are not allowed to this country"),
    "MESSAGE_NOT_FOUND": (404, "No message with this id"),
    "RATE_LIMITED": (429, "Too many requests"),
    "INTERNAL_ERROR": (500, "Internal error"),
    "SERVICE_UNAVAILABLE": (503, "The service is temporarily unavailable"),
}
error: Final = ErrorTable(ERRORS, error_envelope)
"""The platform's error format: ``{"error": {"code", "message"}}`` with the code's HTTP status."""

# The canonical status -> the platform's word; any other status reads "unknown".
WORDS: Final[dict[State, str]] = {
    State.QUEUED: "queued",
    State.SENT: "sent",
    State.DELIVERED: "delivered",
    State.UNDELIVERABLE: "undelivered",
    State.DENIED: "rejected",
    State.EXPIRED: "expired",
    State.DELETED: "deleted",
}
_TRANSPORT_KINDS: Final = frozenset(
    {FaultKind.LATENCY, FaultKind.TIMEOUT, FaultKind.HTTP_STATUS, FaultKind.ERROR_CODE, FaultKind.GARBAGE, FaultKind.DRIP}
)
_SEND_KINDS: Final = _TRANSPORT_KINDS | {FaultKind.FINAL_STATUS}
_MESSAGE_FIELDS: Final = ("from", "to", "text")


@dataclass(frozen=True, slots=True)
class Submission:
    """What the delivery report tells of an accepted message besides its status."""

    to: str
    sender: str
    parts: int
    cost: Decimal
    created_at: float


class Refused(SmsWorkerError):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


class DtA2p:
    """One prepaid balance shared by every API key, and the messages it paid for."""

    name: ClassVar[str] = PROVIDER
    endpoints: ClassVar[frozenset[str]] = frozenset({SEND, REPORT, BALANCE})
    checks: ClassVar[frozenset[str]] = frozenset({REPORT})

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None:
        self._settings = settings
        self._keys = settings.dt_a2p_api_keys
        self._price = Decimal(str(settings.dt_a2p_price_per_part))
        self._recorder = recorder
        self._faults = faults
        self._messages = MessageStore(clock, settings.sent_after, settings.delivered_after)
        self._balance = Decimal(str(settings.dt_a2p_balance))
        self._submissions: dict[int, Submission] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/sms", self._send, methods=["POST"]),
            Route("/v1/sms/{id}", self._report, methods=["GET"]),
            Route("/v1/balance", self._balance_endpoint, methods=["GET"]),
        ]

    def reset(self) -> None:
        self._balance = Decimal(str(self._settings.dt_a2p_balance))
        self._messages.clear()
        self._submissions.clear()

    async def _send(self, request: Request) -> Response:
        body = await json_body(request)
        fields = body if isinstance(body, dict) else {}
        rule = self._faults.take(PROVIDER, SEND, fields.get("to"), _SEND_KINDS)
        answer = preempt(rule, error) or self._submit(request, body, rule)
        params = {key: value for key, value in fields.items() if key not in _MESSAGE_FIELDS}
        self._recorder.record(PROVIDER, SEND, answer, to=fields.get("to"), sender=fields.get("from"), text=fields.get("text"), params=params)
        return await respond(answer, rule)

    async def _report(self, request: Request) -> Response:
        rule = self._faults.take(PROVIDER, REPORT, None, _TRANSPORT_KINDS | WORDED)
        answer = preempt(rule, error) or self._authenticate(request) or self._delivery_report(request.path_params["id"], rule)
        return await respond(answer, rule)

    async def _balance_endpoint(self, request: Request) -> Response:
        rule = self._faults.take(PROVIDER, BALANCE, None, _TRANSPORT_KINDS)
        answer = preempt(rule, error) or self._authenticate(request) or Answer(200, self._balance_body(), OK)
        return await respond(answer, rule)

    def _authenticate(self, request: Request) -> Answer | None:
        key = request.headers.get("x-api-key")
        if key is None:
            return error("INVALID_API_KEY", "The X-API-Key header is missing")
        return None if key in self._keys else error("INVALID_API_KEY")

    def _submit(self, request: Request, body: Any, rule: FaultRule | None) -> Answer:
        """Well-formed requests are charged before the recipient and sender are looked at:
        the document bills a wrong number or an unsupported sender ID too."""
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return error("INVALID_REQUEST")
        try:
            sender, to, text = (_field(body, name) for name in _MESSAGE_FIELDS)
        except Refused as exc:
            return exc.answer
        parts = count_parts(text, None)
        cost = self._price * parts
        if cost > self._balance:
            return error(
                "INSUFFICIENT_BALANCE",
                f"The prepaid balance of {self._balance} {CURRENCY} does not cover {cost} {CURRENCY}",
            )
        self._balance -= cost
        refusal = self._refusal(to, sender)
        if refusal is not None:
            return replace(refusal, parts=parts)
        message = self._messages.accept(VALIDITY_MINUTES, None, final_status(rule))
        submission = Submission(to, sender, parts, cost, self._messages.now())
        self._submissions[message.id] = submission
        body = {**_describe(message, submission, State.QUEUED), **self._balance_body()}
        return Answer(201, body, OK, message_id=message.id, parts=parts)

    def _refusal(self, to: str, sender: str) -> Answer | None:
        """A wrong recipient, an unverified sender, or an alphanumeric sender to a country that
        does not take one."""
        country = _country(to)
        if country is None:
            return error("INVALID_RECIPIENT", f"{to!r} is not a valid phone number in E.164 format")
        if sender not in self._settings.dt_a2p_verified_senders:
            return error("SENDER_NOT_VERIFIED", f"The sender ID {sender!r} has not been verified")
        if not sender.removeprefix("+").isdigit() and country not in self._settings.dt_a2p_alphanumeric_countries:
            return error("ALPHANUMERIC_SENDER_NOT_ALLOWED", f"Alphanumeric sender IDs are not allowed to {country}")
        return None

    def _delivery_report(self, raw_id: str, rule: FaultRule | None) -> Answer:
        """The report of one message, its word as a ``spelling`` ``rule`` writes it."""
        message = self._messages.get(int(raw_id)) if raw_id.isdigit() else None
        if message is None:
            return error("MESSAGE_NOT_FOUND", f"No message with id {raw_id!r}")
        status = message.status_at(self._messages.now())
        return Answer(200, _describe(message, self._submissions[message.id], status, rule), OK)

    def _balance_body(self) -> dict[str, Any]:
        return {"balance": float(self._balance), "currency": CURRENCY}


def _describe(message: Message, submission: Submission, status: State, rule: FaultRule | None = None) -> dict[str, Any]:
    """The delivery report; its word as a ``spelling`` ``rule`` writes it."""
    return {
        "id": str(message.id),
        "status": spelled(rule, WORDS.get(status, "unknown")),
        "to": submission.to,
        "from": submission.sender,
        "parts": submission.parts,
        "cost": float(submission.cost),
        "currency": CURRENCY,
        "created_at": utc_timestamp(submission.created_at, "milliseconds"),
        "delivered_at": utc_timestamp(message.final_at, "milliseconds") if status is State.DELIVERED else None,
    }


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise Refused(error("MISSING_PARAMETER", f"Field {name!r} is required"))
    if not isinstance(value, str):
        raise Refused(error("INVALID_PARAMETER", f"Field {name!r} must be a string"))
    return value


def _country(number: str) -> str | None:
    """The region of a valid E.164 number (with ``+``); None for anything else."""
    if not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed) if phonenumbers.is_valid_number(parsed) else None
