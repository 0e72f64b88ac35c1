"""Telekom SK SMS API v1 (``../shared/seeds/telekom-sk-sms-api-v1.txt``), JSON or XML transport.

Assumptions where the document is silent:
- Error codes other than the documented ``OK``, ``SESSION_NOT_FOUND`` and ``IP_NOT_ALLOWED``
  (``INVALID_TOKEN``, ``MISSING_PARAMETER``, ``INVALID_PARAMETER``, ``MESSAGE_NOT_FOUND``) are
  the sandbox's; any code not in :attr:`TelekomSkAdapter.errors` is treated as permanent, so an
  unknown answer never burns retries.
- ``deliveryDateTime`` carries no zone; it is Slovak local time (Europe/Bratislava). So is a
  callback ``timestamp`` written without an offset (the document's example ends in ``Z``): one
  zone, :attr:`TelekomSkAdapter.zone`, for the polled and the called-back path, whatever the
  host's zone.
- sms_worker schedules itself and takes delivery reports from the poller or the account's
  callback URL: ``send_message`` is sent without ``delivery_time``, ``callback`` and ``groupId``.
- Recipients are sent as digits without ``+``: the document reserves ``+421...`` for RCS.
- The document's callback example has a trailing comma inside ``delivery``; callbacks are read
  leniently so a provider that really sends that is still understood.
- ``verify`` calls ``ping`` (with a fresh session, or the token in token mode): it is the
  cheapest authenticated function and sends nothing.
- The XML transport is XML 1.0 (the document's ``<?xml version="1.0"``): a text holding a
  character XML 1.0 cannot carry even as a reference (a form feed, another control character,
  U+FFFE) cannot go that way, and routing knows it (:meth:`TelekomSkAccount.eligibility`). A
  carriage return goes as ``&#13;``, since a parser reads a raw one as a line feed; ``&``,
  ``<`` and ``>`` are escaped as always, so the text arrives as it was priced.
- ``from`` is "sender number or text identifier", with no grammar given: sms_worker's own
  (:func:`~sms_worker.validation.validate_sender`) is the only rule.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as DefusedET
import httpx

from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.base import Accepted, DeliveryReceipt, OneRecipientPerRequest, OutboundMessage
from sms_worker.providers.eligibility import XML_1_0, Eligibility
from sms_worker.providers.failures import ErrorClass, ErrorKind, ProviderError
from sms_worker.providers.plumbing import bad_response, callback_json, message_id_of, raise_for_http_status, raise_provider_error, transport_errors
from sms_worker.providers.schema import AccountBase, Credential
from sms_worker.providers.sessions import Sessions
from sms_worker.providers.timestamps import parse_timestamp, parse_wall_clock
from sms_worker.providers.words import same_word

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PING_AFTER_IDLE = 10 * 60
"""Refresh the session well before the provider's 15 minutes of inactivity run out."""


class TelekomSkAccount(AccountBase):
    """``type = "telekom-sk"``: credential ``token``; ``transport`` (``json`` or ``xml``) and
    ``use_session`` (false: the token with every request, no session)."""

    type: Literal["telekom-sk"]
    token: Credential
    transport: Literal["json", "xml"] = "json"
    use_session: bool = True

    def eligibility(self) -> Eligibility:
        """With ``transport = "xml"``, no character outside XML 1.0 (:data:`~.eligibility.XML_1_0`)."""
        eligibility = super().eligibility()
        return replace(eligibility, text=XML_1_0) if self.transport == "xml" else eligibility


@dataclass(frozen=True, slots=True)
class SmsGroup:
    """A cadence group (``sms-groups``); a message may name one with ``groupId``."""

    id: int
    name: str
    paused: bool
    note: str


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """What ``check_phone_number`` says of a number: whether it exists, and its operator."""

    exists: bool
    operator: str


class JsonCodec:
    """The JSON transport: POST a JSON object to ``<base>/json/<function>``, read one back."""

    path = "json"

    def encode(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"json": params}

    def decode(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise bad_response(f"not JSON: {response.text[:100]!r}") from None
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise bad_response("no result object in the answer")
        return body


class XmlCodec:
    """The XML transport: POST a ``<request>`` document to ``<base>/xml/<function>``.

    The answer is read into the same shape as the JSON one, so the adapter has one logic for
    both: ``<messages><message id=...>`` becomes ``messages[]`` and ``check_message``'s
    ``<message>`` its top-level fields. XML answers carry no ``parts``.
    """

    path = "xml"

    def encode(self, params: dict[str, Any]) -> dict[str, Any]:
        """One element per parameter, its value as character data: ``&``, ``<`` and ``>``
        escaped (ElementTree), and a carriage return as ``&#13;`` (XML 1.0 section 2.11: a
        parser reads a raw one as a line feed; ElementTree writes it raw)."""
        root = ET.Element("request")
        for name, value in params.items():
            ET.SubElement(root, name).text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        body = ET.tostring(root, encoding="utf-8").replace(b"\r", b"&#13;")
        document = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
        return {"content": document, "headers": {"content-type": "application/xml"}}

    def decode(self, response: httpx.Response) -> dict[str, Any]:
        try:
            root = DefusedET.fromstring(response.content)
        except (DefusedET.ParseError, ValueError):
            raise bad_response(f"not XML: {response.text[:100]!r}") from None
        result = root.find("result")
        if root.tag != "response" or result is None:
            raise bad_response("no <result> in the answer")
        body: dict[str, Any] = {"result": _texts(result)}
        if root.find("session_id") is not None:
            body["session_id"] = root.findtext("session_id")
        messages = root.find("messages")
        if messages is not None:
            body["messages"] = [{**_texts(m), "message_id": m.get("id")} for m in messages.findall("message")]
        message = root.find("message")
        if message is not None:
            body.update(_texts(message))
        groups = root.find("groups")
        if groups is not None:
            body["groups"] = [_texts(group) for group in groups.findall("number")]
        phone_number = root.find("phone_number")
        if phone_number is not None:
            body.update(_texts(phone_number))
        return body


def _texts(element: ET.Element) -> dict[str, str]:
    return {child.tag: (child.text or "").strip() for child in element}


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class TelekomSkAdapter(OneRecipientPerRequest):
    """One Telekom SK API key. Keeps a session, pings it when idle, logs in again when it is lost
    (or, with ``use_session = false``, sends the token with every request)."""

    errors = {
        "SESSION_NOT_FOUND": ErrorClass(ErrorKind.REAUTHENTICATE),
        "ERROR": ErrorClass(ErrorKind.TRANSIENT),
        "IP_NOT_ALLOWED": ErrorClass(ErrorKind.PERMANENT, account_wide=True),
        "INVALID_TOKEN": ErrorClass(ErrorKind.PERMANENT, account_wide=True),
        "DENIED": ErrorClass(ErrorKind.PERMANENT, status=Status.REJECTED),
        "UNDELIVERABLE": ErrorClass(ErrorKind.PERMANENT),
    }
    statuses = {
        **dict.fromkeys(("UNSENT", "SCHEDULED", "QUEUED", "IN_GROUP", "PROCESSING", "ERROR"), Delivery.QUEUED),
        **dict.fromkeys(("SENDING", "SENT"), Delivery.SENT),
        **dict.fromkeys(("DELIVERED", "READ"), Delivery.DELIVERED),
        "EXPIRED": Delivery.EXPIRED,
        **dict.fromkeys(("DELETED", "UNDELIVERABLE"), Delivery.UNDELIVERABLE),
        "DENIED": Delivery.REJECTED,
        "UNKNOWN": Delivery.UNDETERMINED,
    }
    """The fifteen codes of the document's status table. ``ERROR`` ("will retry up to 5 times
    within 60 minutes") is the provider retrying: it still holds the message. ``DELETED``
    ("removed from the delivery queue") will never be delivered."""
    zone: tzinfo = ZoneInfo("Europe/Bratislava")
    """Slovak local time, for every time the API writes without a zone (the module says why)."""

    def __init__(self, name: str, account: TelekomSkAccount, client: httpx.Client, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, account.base_url, client)
        self._token = account.token.get_secret_value()
        self._codec = XmlCodec() if account.transport == "xml" else JsonCodec()
        if account.use_session:
            self.sessions = Sessions(self._login, idle=PING_AFTER_IDLE, keep_alive=self._ping, monotonic=monotonic)

    def send_one(self, message: OutboundMessage) -> Accepted:
        body = self._call("send_message", _send_params(message))
        entries = body.get("messages") or []
        if not entries:
            raise bad_response("send_message answered without messages[]")
        entry = entries[0]
        if not same_word(entry.get("status"), "success") or entry.get("message_id") is None:
            raise self.error(str(entry.get("code") or ""), str(entry.get("description") or ""))
        return Accepted(str(entry["message_id"]), "QUEUED", Delivery.QUEUED, entry.get("parts"))

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        body = self._call("check_message", {"message_id": provider_message_id})
        code = str(body.get("code", "UNKNOWN"))
        return DeliveryReceipt(provider_message_id, code, self.delivery(code), parse_wall_clock(body.get("deliveryDateTime"), TIME_FORMAT, self.zone))

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        """The document's delivery status callback: one JSON object, its example's trailing comma
        tolerated; ``messageId`` an integer (a string is taken too)."""
        document = callback_json(body, content_type, "a Telekom SK callback", second_reading=lambda text: _TRAILING_COMMA.sub(r"\1", text))
        delivery = document.get("delivery") if isinstance(document, dict) else None
        message_id = message_id_of(document.get("messageId")) if isinstance(document, dict) else None
        if message_id is None:
            raise ValueError("a Telekom SK callback needs messageId, an integer")
        if not isinstance(delivery, dict) or not isinstance(delivery.get("status"), str):
            raise ValueError("a Telekom SK callback needs delivery.status, a string")
        code = delivery["status"]
        status = self.delivery(code)
        moment = parse_timestamp(document.get("timestamp"), zone=self.zone)
        delivered_at = moment if status is Delivery.DELIVERED else None
        return [DeliveryReceipt(message_id, code, status, delivered_at)]

    def verify(self) -> str:
        """``ping``, with a fresh session (or the token, in token mode)."""
        if self.sessions is None:
            self._post("ping", {"token": self._token})
            return f"token accepted ({self._codec.path})"
        self.sessions.close()
        self._call("ping", {})
        return f"session opened ({self._codec.path})"

    def sms_groups(self, limit: int | None = None, start_from: int | None = None) -> list[SmsGroup]:
        params = {key: value for key, value in (("limit", limit), ("startFrom", start_from)) if value is not None}
        body = self._call("sms-groups", params)
        return [SmsGroup(int(g["id"]), str(g["name"]), _flag(g.get("isPaused")), str(g.get("note") or "")) for g in body.get("groups", [])]

    def check_phone_number(self, phone_number: str) -> NumberCheck:
        body = self._call("check_phone_number", {"phone_number": phone_number.removeprefix("+")})
        return NumberCheck(_flag(body.get("exists")), str(body.get("operator") or ""))

    def _call(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.sessions is None:
            return self._post(function, {**params, "token": self._token})
        return self.sessions.call(lambda session_id: self._post(function, {**params, "session_id": session_id}))

    def _login(self) -> str:
        body = self._post("auth", {"token": self._token})
        session_id = body.get("session_id")
        if not session_id:
            raise bad_response("auth answered without a session_id")
        return str(session_id)

    def _ping(self, session_id: str) -> None:
        self._post("ping", {"session_id": session_id})

    def _post(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        """One function call; a result other than ``success`` raises its code's error, whatever
        the HTTP status it came with (the API answers errors with 200; a 4xx or 5xx carrying its
        result is read the same way). An error status without the API's answer is classified by
        the status."""
        with transport_errors():
            response = self.client.post(self.url(f"/{self._codec.path}/{function}"), **self._codec.encode(params))
        try:
            body = self._codec.decode(response)
        except ProviderError:
            raise_for_http_status(response)
            raise
        result = body["result"]
        if not same_word(result.get("status"), "success"):
            raise_provider_error(response, self.errors, str(result.get("code") or ""), str(result.get("description") or ""))
        raise_for_http_status(response)
        return body


def _send_params(message: OutboundMessage) -> dict[str, Any]:
    params: dict[str, Any] = {"to": message.recipient.removeprefix("+"), "text": message.text, "priority": message.priority.value}
    if message.sender:
        params["from"] = message.sender
    if message.validity_minutes is not None:
        params["validity"] = message.validity_minutes
    if message.unicode is not None:
        params["unicode"] = message.unicode
    if message.flash:
        params["type"] = "flash"
    return params


def _flag(value: object) -> bool:
    """JSON answers with booleans, XML with ``true``/``false`` text."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
