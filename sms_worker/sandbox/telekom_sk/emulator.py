"""The Telekom SK API v1 functions, independent of the wire format they are served in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sms_worker.clock import Clock
from sms_worker.sandbox.answers import hold, misbehave, utc_timestamp
from sms_worker.sandbox.faults import CALLBACK, REQUEST_KINDS, WORDED, FaultEngine, FaultKind, FaultRule, final_status, http_error, spelled
from sms_worker.sandbox.lifecycle import Message, MessageStore
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telekom_sk.codec import Codec, CodecError, JsonCodec, XmlCodec
from sms_worker.sandbox.telekom_sk.params import ParameterError, parse_message_id, parse_page, parse_phone_number, parse_send
from sms_worker.sandbox.telekom_sk.parts import count_parts
from sms_worker.sandbox.telekom_sk.results import (
    INVALID_REQUEST,
    INVALID_TOKEN,
    IP_NOT_ALLOWED,
    MESSAGE_NOT_FOUND,
    MISSING_PARAMETER,
    OK,
    SESSION_NOT_FOUND,
    SESSION_NOT_FOUND_TEXT,
    STATUS_TABLE,
    Outcome,
    describe,
    error,
    success,
)
from sms_worker.sandbox.telekom_sk.sessions import SessionStore
from sms_worker.sandbox.webhooks import Webhooks

PROVIDER: Final = "telekom-sk"
SEND: Final = "send_message"
CHECK: Final = "check_message"
ENDPOINTS: Final = ("auth", "ping", SEND, CHECK, "sms-groups", "check_phone_number")
# The sandbox's cadence groups (id, name, isPaused, note); the document shows one.
GROUPS: Final = ((1000, "Default", False, "Sandbox cadence group"), (1001, "Campaigns", True, "Paused in the sandbox"))
# Slovak mobile prefixes (after 09) by operator, for check_phone_number.
OPERATORS: Final = {
    **dict.fromkeys(("01", "02", "03", "04", "10", "11", "12", "14"), "Telekom"),
    **dict.fromkeys(("05", "06", "07", "08", "15", "16", "17", "18", "19"), "Orange"),
    **dict.fromkeys(("40", "44", "48", "49"), "O2"),
    **dict.fromkeys(("50", "51"), "4ka"),
}
# Codes a send_message fault reports inside messages[] (the recipient was refused, not the call).
PER_MESSAGE_CODES: Final = frozenset({State.DENIED.value, State.UNDELIVERABLE.value})
_NOT_SEND_KINDS: Final = REQUEST_KINDS - {FaultKind.FINAL_STATUS}
_KINDS: Final = {SEND: REQUEST_KINDS, CHECK: _NOT_SEND_KINDS | WORDED}
"""The fault kinds each function acts on; the others, :data:`_NOT_SEND_KINDS`."""
_NOT_RECORDED_PARAMS: Final = frozenset({"token", "session_id", "to", "from", "text"})
_WALL_CLOCK_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it: parameters, caller's IP, and the fault rule it drew."""

    params: dict[str, Any]
    client: str
    rule: FaultRule | None


class TelekomSk:
    """Sessions, messages and the document's six functions, shared by every codec."""

    name: ClassVar[str] = PROVIDER
    endpoints: ClassVar[frozenset[str]] = frozenset({*ENDPOINTS, CALLBACK})
    checks: ClassVar[frozenset[str]] = frozenset({CHECK})

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None:
        self._tokens = settings.telekom_sk_tokens
        self._allowed_ips = settings.telekom_sk_allowed_ips
        self._zone = ZoneInfo(settings.telekom_sk_timezone)
        self._sessions = SessionStore(clock)
        self._messages = MessageStore(clock, settings.sent_after, settings.delivered_after)
        self._callback_url = settings.telekom_sk_callback_url
        self.webhooks = Webhooks(clock, PROVIDER)
        self._recorder = recorder
        self._faults = faults
        self._handlers: dict[str, Callable[[Call], Outcome]] = {
            "auth": self._auth,
            "ping": self._ping,
            SEND: self._send_message,
            CHECK: self._check_message,
            "sms-groups": self._sms_groups,
            "check_phone_number": self._check_phone_number,
        }

    def routes(self) -> list[Route]:
        """Both wire formats: ``/json/<function>`` and ``/xml/<function>``."""
        return [*self.codec_routes(JsonCodec()), *self.codec_routes(XmlCodec())]

    def codec_routes(self, codec: Codec) -> list[Route]:
        """The functions in one wire format, under ``/<codec.name>/<function>``."""
        return [Route(f"/{codec.name}/{name}", self._endpoint(name, codec), methods=["GET", "POST"]) for name in ENDPOINTS]

    def reset(self) -> None:
        self._sessions.clear()
        self._messages.clear()
        self.webhooks.clear()

    def _endpoint(self, name: str, codec: Codec) -> Callable[[Request], Awaitable[Response]]:
        handler = self._handlers[name]
        kinds = _KINDS.get(name, _NOT_SEND_KINDS)

        async def endpoint(request: Request) -> Response:
            rule = None
            try:
                params = await codec.read(request)
            except CodecError as exc:
                params, outcome = {}, error(INVALID_REQUEST, str(exc))
            else:
                rule = self._faults.take(PROVIDER, name, params.get("to"), kinds)
                call = Call(params, request.client.host if request.client else "", rule)
                outcome = self._preempt(name, call) or handler(call)
            if name == SEND:
                self._record(params, outcome)
            await hold(rule)
            if not outcome.body:
                return misbehave(http_error(outcome.http_status), rule)
            response = codec.write(name, outcome.body)
            response.status_code = outcome.http_status
            return misbehave(response, rule)

        return endpoint

    def _preempt(self, name: str, call: Call) -> Outcome | None:
        """The answer a fault rule puts in place of the function's own, if it does."""
        rule = call.rule
        if rule is None:
            return None
        if rule.fault is FaultKind.HTTP_STATUS:
            status = rule.params["status"]
            return Outcome({}, f"HTTP_{status}", http_status=status)
        if rule.fault is FaultKind.SESSION_LOSS:
            self._sessions.clear()
            return error(SESSION_NOT_FOUND, SESSION_NOT_FOUND_TEXT)
        if rule.fault is FaultKind.ERROR_CODE and not (name == SEND and rule.params["code"] in PER_MESSAGE_CODES):
            code = spelled(rule, rule.params["code"])
            return replace(error(code, _fault_description(rule, call.client)), http_status=rule.answer_status(200))
        return None

    def _check_ip(self, client: str) -> Outcome | None:
        if client in self._allowed_ips:
            return None
        return error(IP_NOT_ALLOWED, _ip_not_allowed(client))

    def _check_token(self, token: Any) -> Outcome | None:
        if token is None or token == "":
            return error(MISSING_PARAMETER, "Parameter 'token' is required")
        if isinstance(token, str) and token in self._tokens:
            return None
        return error(INVALID_TOKEN, "The API token is not valid")

    def _admit(self, call: Call) -> Outcome | None:
        """IP allow-list, then a live ``session_id`` or else a valid ``token`` (per-request mode)."""
        refused = self._check_ip(call.client)
        if refused is not None:
            return refused
        session_id = call.params.get("session_id")
        if session_id not in (None, ""):
            if isinstance(session_id, str) and self._sessions.touch(session_id):
                return None
            return error(SESSION_NOT_FOUND, SESSION_NOT_FOUND_TEXT)
        if call.params.get("token") in (None, ""):
            return error(MISSING_PARAMETER, "Parameter 'session_id' or 'token' is required")
        return self._check_token(call.params["token"])

    def _auth(self, call: Call) -> Outcome:
        refused = self._check_ip(call.client) or self._check_token(call.params.get("token"))
        if refused is not None:
            return refused
        return Outcome(success(session_id=self._sessions.open()), OK)

    def _ping(self, call: Call) -> Outcome:
        return self._admit(call) or Outcome(success(), OK)

    def _send_message(self, call: Call) -> Outcome:
        refused = self._admit(call)
        if refused is not None:
            return refused
        try:
            request = parse_send(call.params, self._zone)
        except ParameterError as exc:
            return error(exc.code, exc.description)
        parts = count_parts(request.text, request.unicode)
        rule = call.rule
        if rule is not None and rule.fault is FaultKind.ERROR_CODE:  # only PER_MESSAGE_CODES get here
            code = rule.params["code"]
            refusal = {
                "status": "error",
                "code": code,
                "description": _fault_description(rule, call.client),
                "message_id": None,
                "parts": parts,
            }
            return Outcome(success(message_count=1, messages=[refusal]), code, parts=parts)
        message = self._messages.accept(request.validity, request.delivery_time, final_status(rule))
        if self._callback_url and request.callback:
            self.webhooks.post_at(self._callback_url, message.final_at, lambda: self._callback(message, parts))
        entry = {"status": "success", "code": OK, "description": "", "message_id": message.id, "parts": parts}
        return Outcome(success(message_count=1, messages=[entry]), OK, accepted=True, message_id=message.id, parts=parts)

    def _callback(self, message: Message, parts: int) -> dict[str, Any]:
        """The document's delivery status callback, as the message stands now; a ``spelling`` rule
        for ``callback`` respells its word."""
        rule = self._faults.take(PROVIDER, CALLBACK, None, WORDED)
        return {
            "delivery": {"status": spelled(rule, message.status_at(self._messages.now()).value)},
            "messageId": message.id,
            "channel": "sms",
            "messageParts": parts,
            "type": "dsn",
            "timestamp": utc_timestamp(self._messages.now(), "milliseconds"),
        }

    def _admitted(self, call: Call, parse: Callable[[dict[str, Any]], Any]) -> tuple[Outcome | None, Any]:
        """Admission, then the function's parameters: (a refusal, None) or (None, the parsed value)."""
        refused = self._admit(call)
        if refused is not None:
            return refused, None
        try:
            return None, parse(call.params)
        except ParameterError as exc:
            return error(exc.code, exc.description), None

    def _check_message(self, call: Call) -> Outcome:
        refused, message_id = self._admitted(call, parse_message_id)
        if refused is not None:
            return refused
        message = self._messages.get(message_id)
        if message is None:
            return error(MESSAGE_NOT_FOUND, f"Message {message_id} was not found")
        status = message.status_at(self._messages.now())
        delivered = datetime.fromtimestamp(message.final_at, self._zone).strftime(_WALL_CLOCK_FORMAT) if status is State.DELIVERED else ""
        code = spelled(call.rule, status.value)
        body = success(message_id=str(message.id), status=STATUS_TABLE[status][0], code=code, deliveryDateTime=delivered)
        return Outcome(body, OK)

    def _sms_groups(self, call: Call) -> Outcome:
        refused, page = self._admitted(call, parse_page)
        if refused is not None:
            return refused
        start, limit = page
        chosen = GROUPS[start:] if limit is None else GROUPS[start : start + limit]
        groups = [{"id": i, "name": name, "isPaused": paused, "note": note} for i, name, paused, note in chosen]
        return Outcome(success(groups=groups), OK)

    def _check_phone_number(self, call: Call) -> Outcome:
        refused, number = self._admitted(call, parse_phone_number)
        if refused is not None:
            return refused
        operator = _slovak_operator(number)
        return Outcome(success(exists=operator is not None, operator=operator or ""), OK)

    def _record(self, params: dict[str, Any], outcome: Outcome) -> None:
        recorded = {key: value for key, value in params.items() if key not in _NOT_RECORDED_PARAMS}
        self._recorder.record(PROVIDER, SEND, outcome, to=params.get("to"), sender=params.get("from"), text=params.get("text"), params=recorded)


def _fault_description(rule: FaultRule, client: str) -> str:
    """An ``error_code`` rule's own description, else what the provider would say for that code."""
    code = rule.params["code"]
    if "description" in rule.params:
        return str(rule.params["description"])
    if code == IP_NOT_ALLOWED:
        return _ip_not_allowed(client)
    return describe(code)


def _slovak_operator(number: str) -> str | None:
    """A Slovak mobile number (``09xxxxxxxx``, ``4219xxxxxxxx`` or ``+4219...``) exists in the
    sandbox when its prefix belongs to an operator; everything else does not."""
    digits = number.removeprefix("+")
    if digits.startswith("421"):
        digits = "0" + digits[3:]
    if len(digits) != 10 or not digits.isdigit() or not digits.startswith("09"):
        return None
    return OPERATORS.get(digits[2:4])


def _ip_not_allowed(client: str) -> str:
    return f"Access from IP address {client} is not allowed"
