"""The seam between Telekom SK's wire formats and its logic.

The document defines every function twice, under ``/json`` and ``/xml``, with the same
parameters and the same answers in two spellings. Handlers therefore take a flat parameter
dict and return the JSON-shaped body from the document; a codec turns a request into that
dict and that body into a response. The endpoint name is passed to :meth:`Codec.write`
because the XML spelling of an answer differs per function (``<messages count=...>``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Protocol

import defusedxml.ElementTree as DefusedET
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sms_worker.errors import SmsWorkerError


class CodecError(SmsWorkerError, ValueError):
    """A request body that cannot be read; the message is sent back as the error description."""


class Codec(Protocol):
    name: str
    """The path segment the codec is served under (``json``, ``xml``)."""

    async def read(self, request: Request) -> dict[str, Any]: ...

    def write(self, endpoint: str, body: dict[str, Any]) -> Response: ...


async def _read_params(request: Request, parse: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
    """Query parameters (read for POST too: it forgives ``session_id`` in the URL), overlaid by
    the POST body as ``parse`` reads it."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            params.update(parse(raw))
    return params


class JsonCodec:
    """POST with a JSON object body, or GET with query parameters (both allowed by the document).

    Query parameters are read for POST too, under the body, which costs nothing and forgives a
    client that puts ``session_id`` in the URL.
    """

    name = "json"

    async def read(self, request: Request) -> dict[str, Any]:
        return await _read_params(request, self._parse)

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            raise CodecError("Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise CodecError("Request body must be a JSON object")
        return body

    def write(self, endpoint: str, body: dict[str, Any]) -> Response:
        return JSONResponse(body)


class XmlCodec:
    """POST with a ``<request>`` document whose children are the parameters, answered with a
    ``<response>`` document spelled as the document shows for each function.

    A parameter's value is its element's character data exactly as an XML 1.0 parser reads it
    (``&#13;`` a carriage return, surrounding spaces and line breaks kept): the text of a
    message is not trimmed. A document that is not well-formed XML 1.0 (a raw form feed, say)
    is refused whole."""

    name = "xml"

    async def read(self, request: Request) -> dict[str, Any]:
        return await _read_params(request, self._parse)

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        try:
            root = DefusedET.fromstring(raw)
        except (DefusedET.ParseError, ValueError):
            raise CodecError("Request body is not valid XML") from None
        if root.tag != "request":
            raise CodecError("Request body must be a <request> document")
        return {child.tag: child.text or "" for child in root}

    def write(self, endpoint: str, body: dict[str, Any]) -> Response:
        root = ET.Element("response")
        _children(ET.SubElement(root, "result"), body["result"], ("status", "description", "code"))
        if "session_id" in body:
            ET.SubElement(root, "session_id").text = body["session_id"]
        if endpoint == "send_message" and "messages" in body:
            messages = ET.SubElement(root, "messages", count=str(len(body["messages"])))
            for entry in body["messages"]:
                element = ET.SubElement(messages, "message")
                if entry.get("message_id") is not None:
                    element.set("id", str(entry["message_id"]))
                _children(element, entry, ("status", "code", "description"))
        if endpoint == "check_message" and "code" in body:
            _children(ET.SubElement(root, "message"), body, ("status", "code", "deliveryDateTime"))
        if endpoint == "sms-groups" and "groups" in body:
            groups = ET.SubElement(root, "groups", count=str(len(body["groups"])))
            for group in body["groups"]:
                _children(ET.SubElement(groups, "number"), group, ("id", "name", "isPaused", "note"))
        if endpoint == "check_phone_number" and "exists" in body:
            _children(ET.SubElement(root, "phone_number"), body, ("exists", "operator"))
        document = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
        return Response(document, media_type="application/xml")


def _children(parent: ET.Element, values: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        ET.SubElement(parent, name).text = _xml_text(values.get(name))


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
