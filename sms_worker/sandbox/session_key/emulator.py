"""The session-key gateway's four calls: ``login``, ``POST /sms``, ``GET /sms/{order_id}``, ``status``."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sms_worker.clock import Clock
from sms_worker.sandbox.answers import Answer, ErrorTable, json_body, preempt, respond
from sms_worker.sandbox.faults import REQUEST_KINDS, WORDED, FaultEngine, FaultKind, FaultRule, spelled
from sms_worker.sandbox.lifecycle import MessageStore
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.session_key.orders import (
    ERRORS,
    QUALITIES,
    SCHEDULE_FORMAT,
    STATUS_WORDS,
    Order,
    OrderError,
    parse_order,
    recipients_of,
)
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.states import State
from sms_worker.sandbox.telekom_sk.sessions import SessionStore

PROVIDER: Final = "session-key"
LOGIN: Final = "login"
SMS: Final = "sms"
SMS_STATE: Final = "sms_state"
STATUS: Final = "status"
ENDPOINTS: Final = (LOGIN, SMS, SMS_STATE, STATUS)
ZONE: Final = ZoneInfo("Europe/Rome")
SESSION_TTL: Final = 5 * 60
VALIDITY_MINUTES: Final = 48 * 60
FIRST_USER_KEY: Final = 1000
_LOGIN_KINDS: Final = frozenset({FaultKind.LATENCY, FaultKind.TIMEOUT, FaultKind.HTTP_STATUS, FaultKind.ERROR_CODE})
_NOT_SEND_KINDS: Final = REQUEST_KINDS - {FaultKind.FINAL_STATUS}
_PREEMPTING: Final = frozenset({FaultKind.HTTP_STATUS, FaultKind.SESSION_LOSS, FaultKind.ERROR_CODE})


_errors: Final = ErrorTable(ERRORS, lambda code, message: {"result": "KO", "code": code, "message": message})


def error(code: str, message: str | None = None, recipients: list[str] | None = None) -> Answer:
    """The gateway's error body; a code it does not know (from a fault rule) is a 400."""
    answer = _errors(code, message)
    if recipients and isinstance(answer.body, dict):
        answer = replace(answer, body={**answer.body, "recipients": recipients})
    return answer


class SessionKey:
    """Users, sessions, one credit pool, and orders of per-recipient messages on the injected clock."""

    name: ClassVar[str] = PROVIDER
    endpoints: ClassVar[frozenset[str]] = frozenset(ENDPOINTS)
    checks: ClassVar[frozenset[str]] = frozenset({SMS_STATE})

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None:
        self._passwords = dict(settings.session_key_users)
        self._user_keys = {user: str(FIRST_USER_KEY + n) for n, (user, _) in enumerate(settings.session_key_users)}
        self._initial_credits = settings.session_key_credits
        self._credits = self._initial_credits
        self._sessions = SessionStore(clock, SESSION_TTL)
        self._messages = MessageStore(clock, settings.sent_after, settings.delivered_after)
        self._orders: dict[str, Order] = {}
        self._internal_ids = itertools.count(1)
        self._recorder = recorder
        self._faults = faults

    def routes(self) -> list[Route]:
        return [
            Route("/login", self._endpoint(LOGIN, _LOGIN_KINDS, self._login), methods=["GET"]),
            Route("/sms", self._send, methods=["POST"]),
            Route("/sms/{order_id}", self._endpoint(SMS_STATE, _NOT_SEND_KINDS | WORDED, self._state), methods=["GET"]),
            Route("/status", self._endpoint(STATUS, _NOT_SEND_KINDS, self._status), methods=["GET"]),
        ]

    def reset(self) -> None:
        self._sessions.clear()
        self._messages.clear()
        self._orders.clear()
        self._credits = self._initial_credits

    # -- the calls other than POST /sms ----------------------------------------------------

    def _endpoint(
        self, name: str, kinds: frozenset[FaultKind], handler: Callable[[Request, FaultRule | None], Answer]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rule = self._faults.take(PROVIDER, name, None, kinds)
            answer = (self._preempt(rule, None) if rule is not None else None) or handler(request, rule)
            return await respond(answer, rule)

        return endpoint

    def _login(self, request: Request, rule: FaultRule | None) -> Answer:
        username, password = request.query_params.get("username"), request.query_params.get("password")
        if not username or not password:
            return error("MISSING_PARAMETER", "Parameters 'username' and 'password' are required")
        if self._passwords.get(username) != password:
            return error("BAD_CREDENTIALS")
        return Answer(200, f"{self._user_keys[username]};{self._sessions.open()}", "OK")

    def _state(self, request: Request, rule: FaultRule | None) -> Answer:
        """The order's recipients, each word as a ``spelling`` ``rule`` writes it."""
        refused = self._admit(request)
        if refused is not None:
            return refused
        order = self._orders.get(request.path_params["order_id"])
        if order is None:
            return error("ORDER_NOT_FOUND")
        now = self._messages.now()
        recipients = []
        for destination, message in order.entries:
            status = message.status_at(now)
            delivered = datetime.fromtimestamp(message.final_at, ZONE).strftime(SCHEDULE_FORMAT) if status is State.DELIVERED else None
            recipients.append(
                {"destination": destination, "status": spelled(rule, STATUS_WORDS.get(status, status.value)), "delivery_date": delivered}
            )
        return Answer(200, {"recipient_number": len(recipients), "result": "OK", "recipients": recipients}, "OK")

    def _status(self, request: Request, rule: FaultRule | None) -> Answer:
        refused = self._admit(request)
        if refused is not None:
            return refused
        sms = [{"type": quality, "quantity": self._credits} for quality in QUALITIES]
        return Answer(200, {"money": None, "sms": sms, "email": None}, "OK")

    # -- POST /sms ----------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        body = await json_body(request)
        recipients = recipients_of(body)
        drawn = self._draw(recipients)
        blocking = next(((number, rule) for number, rule in drawn if rule.fault in _PREEMPTING), None)
        preempted = self._preempt(blocking[1], blocking[0]) if blocking is not None else None
        finals = {number: State(rule.params["status"]) for number, rule in drawn if rule.fault is FaultKind.FINAL_STATUS}
        answer = preempted or self._admit(request) or self._accept(body, finals)
        self._record(body, recipients, answer)
        return await respond(answer, *(rule for _, rule in drawn))

    def _draw(self, recipients: list[str]) -> list[tuple[str | None, FaultRule]]:
        """The rules this order meets: one for the order, then one per recipient a rule names.

        A rule without ``to`` is drawn once per order. A rule with ``to`` applies when its
        number is among the recipients (a ``final_status`` to that recipient alone, anything
        else to the whole order, as the request carried that number), unless a rule of the same
        kind without ``to`` is active: that one already speaks for every recipient.
        """
        drawn: list[tuple[str | None, FaultRule]] = []
        rule = self._faults.take(PROVIDER, SMS, None)
        if rule is not None:
            drawn.append((None, rule))
        active = [r for r in self._faults.rules() if r.provider == PROVIDER and r.endpoint in (None, SMS)]
        generic = {r.fault for r in active if r.to is None}
        targeted: dict[str, set[FaultKind]] = {}
        for r in active:
            if r.to is not None:
                targeted.setdefault(r.to, set()).add(r.fault)
        for number in dict.fromkeys(recipients):
            kinds = frozenset(targeted.get(number.strip().lstrip("+"), set()) - generic)
            rule = self._faults.take(PROVIDER, SMS, number, kinds) if kinds else None
            if rule is not None:
                drawn.append((number, rule))
        return drawn

    def _accept(self, body: Any, finals: dict[str | None, State]) -> Answer:
        try:
            order = parse_order(body, ZONE)
        except OrderError as exc:
            return error(exc.code, exc.message, exc.recipients)
        if order.cost > self._credits:
            refusal = error("NOT_ENOUGH_CREDITS", f"The order needs {order.cost} credits, {self._credits} left")
            return replace(refusal, parts=order.parts)
        self._credits -= order.cost
        order_id = str(uuid.uuid4())
        default = finals.get(None, State.DELIVERED)
        entries = tuple(
            (number, self._messages.accept(VALIDITY_MINUTES, order.scheduled, finals.get(number, default))) for number in order.recipients
        )
        self._orders[order_id] = Order(order_id, f"{next(self._internal_ids):08d}", entries)
        answer: dict[str, Any] = {
            "result": "OK",
            "order_id": order_id,
            "total_sent": len(entries),
            "internal_order_id": self._orders[order_id].internal_order_id,
        }
        if order.return_credits:
            answer["remaining_credits"] = self._credits
        return Answer(201, answer, "OK", message_id=order_id, parts=order.parts)

    def _record(self, body: Any, recipients: list[str], answer: Answer) -> None:
        """One entry per recipient (one with ``to`` null if none could be read), secrets never.
        An accepted order's ``message_id`` is its order id; each entry's is ``<order_id>:<recipient>``."""
        fields = body if isinstance(body, dict) else {}
        params = {
            "order_id": answer.message_id,
            "recipient_count": len(recipients),
            "message_type": fields.get("message_type"),
            "returnCredits": fields.get("returnCredits"),
            "scheduled_delivery_time": fields.get("scheduled_delivery_time"),
        }
        numbers: list[str | None] = [*recipients] or [None]
        for number in numbers:
            entry = replace(answer, message_id=f"{answer.message_id}:{number}") if answer.accepted else answer
            self._recorder.record(PROVIDER, SMS, entry, to=number, sender=fields.get("sender"), text=fields.get("message"), params=params)

    # -- shared ----------------------------------------------------------------------------------

    def _admit(self, request: Request) -> Answer | None:
        """``user_key`` must be a user's and ``Session_key`` a live session (which it refreshes)."""
        user_key, session_key = request.headers.get("user_key"), request.headers.get("Session_key")
        if not user_key or not session_key:
            return error("UNAUTHORIZED")
        if user_key not in self._user_keys.values():
            return error("USER_KEY_NOT_FOUND")
        if not self._sessions.touch(session_key):
            return error("UNAUTHORIZED")
        return None

    def _preempt(self, rule: FaultRule, recipient: str | None) -> Answer | None:
        """The answer a fault rule puts in place of the call's own, if it does; an
        ``INVALID_RECIPIENT`` rule drawn for one recipient names that one as refused."""
        if rule.fault is FaultKind.SESSION_LOSS:
            self._sessions.clear()
            return error("UNAUTHORIZED")

        def refusal(code: str, description: str | None) -> Answer:
            refused = [recipient] if recipient is not None and code == "INVALID_RECIPIENT" else None
            return error(code, description, refused)

        return preempt(rule, refusal)
