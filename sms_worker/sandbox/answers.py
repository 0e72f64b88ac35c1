"""One request and its answer, the same for every emulated provider: reading the JSON body, the
answer record, an error table's answers, what a fault rule puts in place of the API's own
answer, and the hold before a slow answer is sent.

Telekom SK answers its errors with HTTP 200 in its own envelope, written by a codec, so it keeps
its own record (:class:`~sms_worker.sandbox.telekom_sk.results.Outcome`) and shares only the hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from sms_worker.sandbox.faults import FaultKind, FaultRule, http_error, spelled

UNKNOWN_CODE_STATUS: Final = 400
"""The HTTP status of an error whose code is not in the provider's table (from a fault rule)."""

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer, and what the submission log keeps of it.

    ``body`` is JSON (a dict), plain text (a str) or None: no body, which for an error status is
    the bare answer of an ``http_status`` fault, as a proxy would send it. ``message_id`` is the
    id the provider gave what it accepted (None: refused); ``parts`` may be set on a refusal too.
    """

    status: int
    body: dict[str, Any] | str | None
    code: str
    message_id: int | str | None = None
    parts: int | None = None

    @property
    def accepted(self) -> bool:
        return self.message_id is not None

    def response(self) -> Response:
        if self.body is None:
            return http_error(self.status) if self.status >= 400 else Response(status_code=self.status)
        if isinstance(self.body, str):
            return PlainTextResponse(self.body, status_code=self.status)
        return JSONResponse(self.body, status_code=self.status)


@dataclass(frozen=True, slots=True)
class ErrorTable(Generic[K]):
    """A provider's error codes, code -> (HTTP status, default message), and the body it wraps an
    error in. Calling it answers one error; a code not in the table (a fault rule may name any)
    is a 400 with ``unknown(code)`` as its message."""

    codes: Mapping[K, tuple[int, str]]
    body: Callable[[K, str], dict[str, Any]]
    unknown: Callable[[K], str] = lambda code: f"Sandbox fault: {code}"

    def __call__(self, code: K, message: str | None = None) -> Answer:
        status, default = self.codes.get(code) or (UNKNOWN_CODE_STATUS, self.unknown(code))
        return Answer(status, self.body(code, message or default), str(code))


def error_envelope(code: str, message: str) -> dict[str, Any]:
    """``{"error": {"code", "message"}}``, the error body of Dexatel and DT A2P (both assumed)."""
    return {"error": {"code": code, "message": message}}


def preempt(rule: FaultRule | None, error: Callable[[str, str | None], Answer]) -> Answer | None:
    """The answer an ``http_status`` or ``error_code`` rule puts in place of the API's own: a bare
    HTTP error, or ``error(code, description)`` in the provider's own format, under the rule's
    ``http_status`` when it names one."""
    if rule is None:
        return None
    if rule.fault is FaultKind.HTTP_STATUS:
        status = rule.params["status"]
        return Answer(status, None, f"HTTP_{status}")
    if rule.fault is FaultKind.ERROR_CODE:
        code = rule.params["code"]
        answer = error(code, rule.params.get("description"))
        return replace(answer, status=rule.answer_status(answer.status), body=_respelled(answer.body, code, spelled(rule, code)))
    return None


def _respelled(body: Any, code: str, spelling: str) -> Any:
    """``body`` with ``code`` written as ``spelling`` wherever the provider's error body holds it."""
    if isinstance(body, dict):
        return {name: _respelled(value, code, spelling) for name, value in body.items()}
    return spelling if body == code else body


async def hold(*rules: FaultRule | None) -> None:
    """Hold the answer back by the longest ``latency`` or ``timeout`` among the rules drawn.

    The work is done (and recorded) before the hold, as a slow provider would have it: a client
    that times out has still had its message accepted.
    """
    delay = max((rule.delay for rule in rules if rule is not None), default=0.0)
    if delay:
        await asyncio.sleep(delay)


GARBAGE_PAGE: Final = "<html><head><title>502 Bad Gateway</title></head><body>upstream sent nothing we could read</body></html>"


def misbehave(response: Response, *rules: FaultRule | None) -> Response:
    """The answer as a ``garbage`` or ``drip`` rule turns it, after the work was done: an HTML
    page in its place, or its own body trickled out a byte at a time."""
    for rule in rules:
        if rule is not None and rule.fault is FaultKind.GARBAGE:
            return HTMLResponse(GARBAGE_PAGE)
        if rule is not None and rule.fault is FaultKind.DRIP:
            return _dripping(response, float(rule.params["ms"]) / 1000)
    return response


def _dripping(response: Response, delay: float) -> Response:
    body = bytes(response.body)

    async def trickle() -> AsyncIterator[bytes]:
        for byte in body:
            await asyncio.sleep(delay)
            yield bytes([byte])

    headers = {"content-length": str(len(body)), "content-type": response.headers.get("content-type", "application/octet-stream")}
    return StreamingResponse(trickle(), status_code=response.status_code, headers=headers)


async def respond(answer: Answer, *rules: FaultRule | None) -> Response:
    await hold(*rules)
    return misbehave(answer.response(), *rules)


async def json_body(request: Request) -> Any:
    """The request body as JSON, or None when it is not JSON (refused by the handler)."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def utc_timestamp(epoch: float, timespec: str) -> str:
    """An RFC 3339 time in UTC with ``Z``, e.g. ``2030-01-01T12:00:00.000Z`` (``milliseconds``)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
