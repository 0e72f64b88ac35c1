"""The seam between Telekom SK's wire formats and its logic.

The document defines every function twice, under ``/json`` and ``/xml``, with the same
parameters and the same answers in two spellings. Handlers therefore take a flat parameter
dict and return the JSON-shaped body from the document; a codec turns a request into that
dict and that body into a response. The endpoint name is passed to :meth:`Codec.write`
because the XML spelling of an answer differs per function (``<messages count=...>``).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class CodecError(ValueError):
    """A request body that cannot be read; the message is sent back as the error description."""


class Codec(Protocol):
    name: str
    """The path segment the codec is served under (``json``, ``xml``)."""

    async def read(self, request: Request) -> dict[str, Any]: ...

    def write(self, endpoint: str, body: dict[str, Any]) -> Response: ...


class JsonCodec:
    """POST with a JSON object body, or GET with query parameters (both allowed by the document).

    Query parameters are read for POST too, under the body, which costs nothing and forgives a
    client that puts ``session_id`` in the URL.
    """

    name = "json"

    async def read(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        if request.method != "POST":
            return params
        raw = await request.body()
        if not raw.strip():
            return params
        try:
            body = json.loads(raw)
        except ValueError:
            raise CodecError("Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise CodecError("Request body must be a JSON object")
        params.update(body)
        return params

    def write(self, endpoint: str, body: dict[str, Any]) -> Response:
        return JSONResponse(body)
