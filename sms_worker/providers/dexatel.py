"""Dexatel SMS API (``../shared/seeds/dexatel-what-is-an-sms-api.txt``): Bearer key, JSON, one
recipient per request.

The document is an overview. What it shows exactly, and this adapter speaks as shown:
``POST <base>/v1/sms/send`` with ``Authorization: Bearer <key>``, ``Content-Type:
application/json`` and the body ``{"from", "to", "text"}`` (``to`` in E.164 with ``+``),
answered with ``{"message_id": "msg_123456789", "status": "queued", "recipient": "+1555..."}``.
It names the statuses ``queued``, ``sent``, ``delivered``, ``failed`` and ``undelivered``,
delivery reports, webhooks and rate limits, without their shapes.

Assumptions where the document is silent (the sandbox, :mod:`sms_worker.sandbox.dexatel`,
emulates exactly these):

- ``base_url`` is everything before ``/v1`` (``https://api.dexatel.com`` in production).
- Status: ``GET <base>/v1/sms/{message_id}`` answers the send answer's shape plus
  ``updated_at`` (RFC 3339, the moment of the last status change); for a delivered message
  that moment is taken as the delivery time.
- Balance (used by :meth:`DexatelProvider.verify`, the cheapest authenticated call):
  ``GET <base>/v1/account/balance`` answers ``{"balance": 12.5, "currency": "EUR"}``.
- Errors are JSON, ``{"error": {"code": "...", "message": "..."}}``, with these codes and HTTP
  statuses: 400 ``INVALID_NUMBER`` / ``INVALID_TEXT`` / ``INVALID_SENDER`` /
  ``INVALID_REQUEST`` (this message's fault), 401 ``UNAUTHORIZED`` (bad key: every message
  would meet it), 402 ``INSUFFICIENT_FUNDS`` (the same), 404 ``MESSAGE_NOT_FOUND`` (status of
  an unknown id), 429 ``RATE_LIMITED``, 500 ``INTERNAL_ERROR``, 503 ``SERVICE_UNAVAILABLE``.
  No rate-limit header is documented, so a 429 is simply retried on the normal schedule. An
  error answer with a code not listed here, or without a JSON error body (a proxy, a wrong
  URL), is classified by its HTTP status alone (:func:`~sms_worker.providers.plumbing.raise_for_http_status`).
- ``failed`` means Dexatel or the carrier refused the message (canonical DENIED);
  ``undelivered`` means the carrier could not deliver it (UNDELIVERABLE). Other words are
  UNKNOWN.
- Webhook (delivery report) body: ``{"message_id", "status", "recipient", "timestamp"}``, one
  report per POST, ``timestamp`` in RFC 3339; the content type is not checked, the body must
  be that JSON object.
- ``from`` is required (the example always sends it): the account's ``default_sender``
  option is used when a message names no sender. A sender ID is 1 to 11 letters, digits or
  spaces, or a phone number of up to 15 digits with an optional ``+``; :class:`DexatelAccount`
  checks the default so that a typo stops the account at start-up instead of failing its backlog.
- No validity, scheduling, priority or encoding parameters are documented: those fields of an
  :class:`~sms_worker.providers.base.OutboundMessage` are not sent, and Dexatel picks GSM-7 or
  UCS-2 from the text. The send answer carries no part count.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import httpx

from sms_worker.providers.base import (
    Accepted,
    ErrorKind,
    OneRecipientPerRequest,
    OutboundMessage,
    ProviderError,
    StatusReport,
)
from sms_worker.providers.plumbing import ErrorClass, classify_code, json_object, raise_for_error, transport_errors
from sms_worker.providers.schema import AccountBase, Credential, NonBlank, fits
from sms_worker.providers.timestamps import parse_timestamp
from sms_worker.status import Delivery, Status

SENDER_RE: Final = re.compile(r"[A-Za-z0-9 ]{1,11}|\+?[0-9]{1,15}")

STATUSES: Final[dict[str, Delivery]] = {
    "queued": Delivery.QUEUED,
    "sent": Delivery.SENT,
    "delivered": Delivery.DELIVERED,
    "failed": Delivery.REJECTED,
    "undelivered": Delivery.UNDELIVERABLE,
}

# code -> (kind, account_wide, final status when permanent)
_ERRORS: Final[dict[str, ErrorClass]] = {
    "INVALID_NUMBER": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    "INVALID_TEXT": ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
    "INVALID_SENDER": ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
    "INVALID_REQUEST": ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
    "MESSAGE_NOT_FOUND": ErrorClass(ErrorKind.PERMANENT, False, Status.UNKNOWN),
    "UNAUTHORIZED": ErrorClass(ErrorKind.PERMANENT, True, Status.REJECTED),
    "INSUFFICIENT_FUNDS": ErrorClass(ErrorKind.PERMANENT, True, Status.REJECTED),
    "RATE_LIMITED": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
    "INTERNAL_ERROR": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
    "SERVICE_UNAVAILABLE": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
}


class DexatelAccount(AccountBase):
    """``type = "dexatel"``: credential ``api_key``; ``default_sender`` (required, because every
    request needs a ``from``)."""

    type: Literal["dexatel"]
    api_key: Credential
    default_sender: Annotated[NonBlank, fits(SENDER_RE.fullmatch, "1 to 11 letters, digits or spaces, or a phone number of up to 15 digits")]


def classify(code: str, text: str) -> ProviderError:
    """A Dexatel error code as an error class; a code not in the table is this message's
    permanent fault, so an unknown answer never burns retries."""
    return classify_code(_ERRORS, code, text)


def canonical_status(word: str) -> Delivery | None:
    """Dexatel's word in our vocabulary; None for a word the document does not name."""
    return STATUSES.get(word)


class DexatelProvider(OneRecipientPerRequest):
    """One Dexatel API key. Stateless: every request carries the key, so there is no session
    to keep or renew, and one instance is safe to share across threads."""

    # The protocol's table lookups are the module's own functions.
    classify = staticmethod(classify)
    map_status = staticmethod(canonical_status)

    def __init__(self, name: str, account: DexatelAccount, client: httpx.Client) -> None:
        self.name = name
        self._base = account.base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {account.api_key.get_secret_value()}"}
        self._client = client
        self._default_sender = account.default_sender

    def send(self, message: OutboundMessage) -> Accepted:
        recipient = message.recipient if message.recipient.startswith("+") else f"+{message.recipient}"
        payload = {"from": message.sender or self._default_sender, "to": recipient, "text": message.text}
        body = self._request("POST", "/v1/sms/send", json=payload)
        message_id, word = body.get("message_id"), body.get("status")
        if not message_id or not isinstance(word, str):
            raise ProviderError(ErrorKind.TRANSIENT, "BAD_RESPONSE", "send answered without message_id and status")
        return Accepted(str(message_id), word, canonical_status(word))

    def check(self, provider_message_id: str) -> StatusReport:
        body = self._request("GET", f"/v1/sms/{quote(provider_message_id, safe='')}")
        word = body.get("status")
        if not isinstance(word, str):
            raise ProviderError(ErrorKind.TRANSIENT, "BAD_RESPONSE", "status answered without a status")
        return _report(provider_message_id, word, parse_timestamp(body.get("updated_at"), zoneless="reject"))

    def parse_callback(self, body: bytes, content_type: str) -> list[StatusReport]:
        """One webhook POST, one report. ValueError for anything but the assumed JSON object."""
        try:
            event = json.loads(body)
        except ValueError:
            raise ValueError("Dexatel webhook body is not JSON") from None
        if not isinstance(event, dict):
            raise ValueError("Dexatel webhook body is not a JSON object")
        message_id, word, timestamp = event.get("message_id"), event.get("status"), event.get("timestamp")
        if not isinstance(message_id, str) or not message_id or not isinstance(word, str) or not word:
            raise ValueError("Dexatel webhook needs message_id and status")
        moment = parse_timestamp(timestamp, zoneless="reject")  # RFC 3339: a zone-less time is ambiguous, not guessed
        if timestamp is not None and moment is None:
            raise ValueError(f"Dexatel webhook timestamp is not RFC 3339: {timestamp!r}")
        return [_report(message_id, word, moment)]

    def verify(self) -> str:
        """The balance call: free, authenticated, and it says whether there is money to send."""
        body = self._request("GET", "/v1/account/balance")
        balance, currency = body.get("balance"), body.get("currency")
        if isinstance(balance, bool) or not isinstance(balance, int | float):
            raise ProviderError(ErrorKind.TRANSIENT, "BAD_RESPONSE", "balance answered without a number")
        return f"balance {balance:.2f} {currency or ''}".rstrip()

    def open(self) -> None:
        """There is no session to open; one balance call stops an account with a wrong key or
        URL before its first batch instead of on it."""
        self.verify()

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the caller."""

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with transport_errors():
            response = self._client.request(method, f"{self._base}{path}", headers=self._headers, **kwargs)
        raise_for_error(response, _ERRORS)
        return json_object(response)


def _report(message_id: str, word: str, moment: datetime | None) -> StatusReport:
    status = canonical_status(word)
    return StatusReport(message_id, word, status, moment if status is Delivery.DELIVERED else None)
