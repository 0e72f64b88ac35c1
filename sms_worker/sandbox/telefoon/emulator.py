"""The four Telefoon operations, each a handler behind one wrapper that takes the fault rule,
checks the key, records sends and holds slow answers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sms_worker.clock import Clock
from sms_worker.errors import SmsWorkerError
from sms_worker.sandbox.answers import Answer, json_body, preempt, respond, utc_timestamp
from sms_worker.sandbox.faults import CALLBACK, WORDED, FaultEngine, FaultKind, FaultRule, final_status, spelled
from sms_worker.sandbox.lifecycle import FIRST_MESSAGE_ID, Message, MessageStore
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telefoon.vocabulary import (
    AUTHENTICATION_FAILED,
    BODY_REQUIRED,
    ERRORS,
    FROM_REQUIRED,
    INVALID_CALLBACK,
    INVALID_FROM,
    INVALID_REQUEST,
    INVALID_TO,
    NOT_FOUND,
    OTHER_FINAL,
    PROGRESS,
    TO_REQUIRED,
    WORDS,
    error,
)
from sms_worker.sandbox.telekom_sk.parts import count_parts
from sms_worker.sandbox.webhooks import Webhooks

PROVIDER: Final = "telefoon"
API: Final = "/v1/sms"
SEND, LIST, GET, DELETE = "send", "list", "get", "delete"
"""Fault-rule endpoint names for sendMessage, listMessages, getMessage and deleteMessage."""
DIRECTIONS: Final = ("inbound", "outbound")
STATUSES: Final = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "received")
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 100
PRICE_PER_SEGMENT: Final = Decimal("0.0750")
PRICE_UNIT: Final = "EUR"
MAX_TRAFFIC: Final = 100_000
"""Messages one sandbox-only traffic request adds, at most."""
VALIDITY_MINUTES: Final = 1440
"""Telefoon has no validity parameter; a day is longer than any sandbox message waits."""
OUTBOUND_PREFIX, INBOUND_PREFIX = "TF", "TI"
_FIELDS: Final = ("to", "from", "body", "sender_id", "status_callback", "gdpr_consent_ref")
_RECORDED_PARAMS: Final = ("sender_id", "status_callback", "gdpr_consent_ref")
_E164: Final = re.compile(r"\+[1-9]\d{6,14}")
_ALPHANUMERIC: Final = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_DIGITS: Final = re.compile(r"\d+")
_KINDS: Final = frozenset({FaultKind.LATENCY, FaultKind.TIMEOUT, FaultKind.HTTP_STATUS, FaultKind.ERROR_CODE, FaultKind.GARBAGE, FaultKind.DRIP})
_SEND_KINDS: Final = _KINDS | {FaultKind.FINAL_STATUS}


@dataclass(frozen=True, slots=True)
class Record:
    """A message the sandbox holds; moments are epoch seconds on the injected clock."""

    id: str
    direction: str
    sender: str
    to: str
    body: str
    segments: int
    created: float
    lifecycle: Message | None
    """None for an inbound message, which stays ``received``."""
    body_listed: bool = True
    """False: its Message is rendered without ``body`` (sandbox traffic that asks for it)."""


class Refusal(SmsWorkerError):
    """Raised anywhere in a handler: the request is answered with this Telefoon error."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or ERRORS[code][1])
        self.code, self.message = code, message

    def answer(self) -> Answer:
        return error(self.code, self.message)


Handler = Callable[[Request, Any, FaultRule | None], Answer]


class Telefoon:
    """Messages by id, their statuses computed on the injected clock, and the API's operations."""

    name: ClassVar[str] = PROVIDER
    endpoints: ClassVar[frozenset[str]] = frozenset({SEND, LIST, GET, DELETE, CALLBACK})
    checks: ClassVar[frozenset[str]] = frozenset({GET, LIST})

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None:
        self._keys = settings.telefoon_api_keys
        self._store = MessageStore(clock, settings.sent_after, settings.delivered_after)
        self._records: dict[str, Record] = {}
        self._post_callbacks = settings.post_status_callbacks
        self.webhooks = Webhooks(clock, PROVIDER)
        self._inbound_ids = itertools.count(FIRST_MESSAGE_ID)
        self._recorder = recorder
        self._faults = faults

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/messages", self._operation(SEND, self._send), methods=["POST"]),
            Route(f"{API}/messages", self._operation(LIST, self._list), methods=["GET"]),
            Route(f"{API}/messages/{{message_id}}", self._operation(GET, self._get), methods=["GET"]),
            Route(f"{API}/messages/{{message_id}}", self._operation(DELETE, self._delete), methods=["DELETE"]),
            Route("/_sandbox/inbound", self._inbound, methods=["POST"]),
            Route("/_sandbox/traffic", self._traffic, methods=["POST"]),
        ]

    def reset(self) -> None:
        self._store.clear()
        self._records.clear()
        self.webhooks.clear()

    def _operation(self, endpoint: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        kinds = {SEND: _SEND_KINDS, GET: _KINDS | WORDED}.get(endpoint, _KINDS)

        async def serve(request: Request) -> Response:
            body = await json_body(request) if endpoint == SEND else None
            rule = self._faults.take(PROVIDER, endpoint, body.get("to") if isinstance(body, dict) else None, kinds)
            try:
                answer = preempt(rule, _fault_error) or self._authenticate(request) or handler(request, body, rule)
            except Refusal as refusal:
                answer = refusal.answer()
            if endpoint == SEND:
                self._record(body, answer)
            return await respond(answer, rule)

        return serve

    def _authenticate(self, request: Request) -> Answer | None:
        if request.headers.get("x-api-key") in self._keys:
            return None
        return Refusal(AUTHENTICATION_FAILED).answer()

    def _send(self, request: Request, body: Any, rule: FaultRule | None) -> Answer:
        _check_send(body)
        lifecycle = self._store.accept(VALIDITY_MINUTES, None, final_status(rule))
        record = self._keep(f"{OUTBOUND_PREFIX}{lifecycle.id}", "outbound", body, lifecycle)
        if self._post_callbacks and "status_callback" in body:
            self.webhooks.post_at(body["status_callback"], lifecycle.final_at, lambda: self._callback(record))
        return Answer(201, self._render(record), "OK", message_id=record.id, parts=record.segments)

    def _list(self, request: Request, body: Any, rule: FaultRule | None) -> Answer:
        query = request.query_params
        direction, status = _choice(query.get("direction"), "direction", DIRECTIONS), _choice(query.get("status"), "status", STATUSES)
        page = _integer(query.get("page"), "page", default=1, high=None)
        page_size = _integer(query.get("page_size"), "page_size", default=DEFAULT_PAGE_SIZE, high=MAX_PAGE_SIZE)
        matching = [r for r in self._records.values() if direction in (None, r.direction)]
        if status is not None:
            now = self._store.now()
            matching = [r for r in matching if _state(r.lifecycle, now)[0] == status]
        start = (page - 1) * page_size
        return Answer(200, {"messages": [self._render(r) for r in matching[start : start + page_size]], "total": len(matching)}, "OK")

    def _get(self, request: Request, body: Any, rule: FaultRule | None) -> Answer:
        return Answer(200, self._render(self._find(request), rule), "OK")

    def _delete(self, request: Request, body: Any, rule: FaultRule | None) -> Answer:
        del self._records[self._find(request).id]
        return Answer(204, None, "OK")

    async def _inbound(self, request: Request) -> Response:
        """Sandbox only, not Telefoon's: make a number "reply", so inbound listing can be tried."""
        body = await json_body(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(name), str) for name in ("from", "to")):
            return JSONResponse({"error": "body must be a JSON object with string from and to"}, status_code=400)
        record = self._keep(f"{INBOUND_PREFIX}{next(self._inbound_ids)}", "inbound", body, None)
        return JSONResponse(self._render(record), status_code=201)

    async def _traffic(self, request: Request) -> Response:
        """Sandbox only, not Telefoon's: ``count`` outbound messages another sender on the same
        key sent now (``{"count", "to", "from", "body"}``, no key), taken as a send would take
        them but not in the submission log, so a busy account's listing can be tried; with
        ``"body_listed": false`` their Messages have no ``body``."""
        body = await json_body(request)
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_TRAFFIC:
            return JSONResponse({"error": f"body must be a JSON object with count from 1 to {MAX_TRAFFIC}"}, status_code=400)
        body_listed = body.get("body_listed", True)
        if not isinstance(body_listed, bool):
            return JSONResponse({"error": "body_listed must be true or false"}, status_code=400)
        sent = {"to": body.get("to", "+31600000000"), "from": body.get("from", "ACME"), "body": body.get("body", "traffic")}
        try:
            _check_send(sent)
        except Refusal as refusal:
            return JSONResponse({"error": refusal.message or ERRORS[refusal.code][1]}, status_code=400)
        for _ in range(count):
            lifecycle = self._store.accept(VALIDITY_MINUTES, None, State.DELIVERED)
            self._keep(f"{OUTBOUND_PREFIX}{lifecycle.id}", "outbound", sent, lifecycle, body_listed=body_listed)
        return JSONResponse({"count": count}, status_code=201)

    def _keep(self, message_id: str, direction: str, body: dict[str, Any], lifecycle: Message | None, *, body_listed: bool = True) -> Record:
        text = str(body.get("body") or "")
        record = Record(message_id, direction, body["from"], body["to"], text, count_parts(text, None), self._store.now(), lifecycle, body_listed)
        self._records[message_id] = record
        return record

    def _find(self, request: Request) -> Record:
        message_id = request.path_params["message_id"]
        record = self._records.get(message_id)
        if record is None:
            raise Refusal(NOT_FOUND, f"Message {message_id} was not found")
        return record

    def _callback(self, record: Record) -> dict[str, Any]:
        """The ``status_callback`` body: the Message, respelled by a ``spelling`` rule for ``callback``."""
        return self._render(record, self._faults.take(PROVIDER, CALLBACK, record.to, WORDED))

    def _render(self, record: Record, rule: FaultRule | None = None) -> dict[str, Any]:
        """The Message object; optional fields are left out rather than null (the schema has no
        nulls). Its status word as a ``spelling`` ``rule`` writes it."""
        word, error_code = _state(record.lifecycle, self._store.now())
        message: dict[str, Any] = {
            "id": record.id,
            "status": spelled(rule, word),
            "direction": record.direction,
            "from": record.sender,
            "to": record.to,
            "num_segments": record.segments,
            "price": str(PRICE_PER_SEGMENT * record.segments),
            "price_unit": PRICE_UNIT,
            "date_created": utc_timestamp(record.created, "seconds"),
        }
        if record.body_listed:
            message["body"] = record.body
        if record.lifecycle is not None and word in ("sent", "delivered", "undelivered"):
            message["date_sent"] = utc_timestamp(record.lifecycle.sent_at, "seconds")
        if error_code is not None:
            message["error_code"] = error_code
            message["error_message"] = ERRORS[error_code][1]
        return message

    def _record(self, body: Any, answer: Answer) -> None:
        fields = body if isinstance(body, dict) else {}
        params = {name: fields[name] for name in _RECORDED_PARAMS if name in fields}
        self._recorder.record(PROVIDER, SEND, answer, to=fields.get("to"), sender=fields.get("from"), text=fields.get("body"), params=params)


def _fault_error(code: str, description: str | None) -> Answer:
    """An ``error_code`` rule's answer; its code must be a Telefoon code (an integer), and is
    logged as the rule spells it."""
    if not _DIGITS.fullmatch(code):
        return Refusal(INVALID_REQUEST, f"Sandbox fault: {code!r} is not a Telefoon error code (an integer)").answer()
    return replace(error(int(code), description), code=code)


def _check_send(body: Any) -> None:
    """The sendMessage body, checked in the schema's order; the first problem is refused."""
    if not isinstance(body, dict):
        raise Refusal(INVALID_REQUEST, "The request body must be a JSON object")
    for name in _FIELDS:
        if name in body and not isinstance(body[name], str):
            raise Refusal(INVALID_REQUEST, f"Parameter '{name}' must be a string")
    if not body.get("to"):
        raise Refusal(TO_REQUIRED)
    if not _E164.fullmatch(body["to"]):
        raise Refusal(INVALID_TO)
    if not body.get("from"):
        raise Refusal(FROM_REQUIRED)
    if not (_E164.fullmatch(body["from"]) or _ALPHANUMERIC.fullmatch(body["from"])):
        raise Refusal(INVALID_FROM)
    if not body.get("body"):
        raise Refusal(BODY_REQUIRED)
    if "sender_id" in body and not _ALPHANUMERIC.fullmatch(body["sender_id"]):
        raise Refusal(INVALID_FROM)
    if "status_callback" in body:
        url = urlsplit(body["status_callback"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise Refusal(INVALID_CALLBACK)


def _state(lifecycle: Message | None, now: float) -> tuple[str, int | None]:
    """The Telefoon status word (and delivery error code) of a message at ``now``."""
    if lifecycle is None:
        return "received", None
    status = lifecycle.status_at(now)
    final = lifecycle.final
    # A final_status fault naming an in-progress state stops the message there.
    if final in PROGRESS and status not in PROGRESS[: PROGRESS.index(final)]:
        status = final
    return WORDS.get(status, OTHER_FINAL)


def _choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise Refusal(INVALID_REQUEST, f"Parameter '{name}' must be one of {', '.join(allowed)}")
    return value


def _integer(value: str | None, name: str, default: int, high: int | None) -> int:
    if value is None:
        return default
    if not _DIGITS.fullmatch(value) or int(value) < 1 or (high is not None and int(value) > high):
        bound = f"from 1 to {high}" if high is not None else "of at least 1"
        raise Refusal(INVALID_REQUEST, f"Parameter '{name}' must be an integer {bound}")
    return int(value)
