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
  that moment is taken as the delivery time. RFC 3339 requires an offset: a time without one,
  polled or called back, is ambiguous and not read (``DexatelAdapter.zone`` is None).
- Balance (used by :meth:`DexatelAdapter.verify`, the cheapest authenticated call, and so at
  worker start; the document names no balance call nor billing): ``GET
  <base>/v1/account/balance`` answers ``{"balance": 12.5, "currency": "EUR"}``, the prepaid
  balance sends are charged from. A balance of zero or less is taken as ``INSUFFICIENT_FUNDS``,
  which every send would meet: account-wide (as DT A2P's empty balance).
- Errors are JSON, ``{"error": {"code": "...", "message": "..."}}``, with these codes and HTTP
  statuses: 400 ``INVALID_NUMBER`` / ``INVALID_TEXT`` / ``INVALID_SENDER`` /
  ``INVALID_REQUEST`` (this message's fault), 401 ``UNAUTHORIZED`` (bad key: every message
  would meet it), 402 ``INSUFFICIENT_FUNDS`` (the same), 404 ``MESSAGE_NOT_FOUND`` (status of
  an unknown id), 429 ``RATE_LIMITED``, 500 ``INTERNAL_ERROR``, 503 ``SERVICE_UNAVAILABLE``.
  No rate-limit header is documented, so a 429 is simply retried on the normal schedule. The
  error body is read under any HTTP status: ``200`` with ``{"error": {"code":
  "INSUFFICIENT_FUNDS"}}`` is that error (the account pauses), not an unreadable answer. An
  error answer with a code not listed here, or without a JSON error body (a proxy, a wrong
  URL), is classified by its HTTP status alone (:func:`~sms_worker.providers.plumbing.raise_for_http_status`).
- ``failed`` means Dexatel or the carrier refused the message (canonical DENIED);
  ``undelivered`` means the carrier could not deliver it (UNDELIVERABLE). Other words are
  UNKNOWN.
- Webhook (delivery report) body: ``{"message_id", "status", "recipient", "timestamp"}``, one
  report per POST, ``timestamp`` in RFC 3339; the body must be that JSON object, declared
  ``application/json``.
- ``from`` is required (the example always sends it): the account's ``default_sender``
  option is used when a message names no sender. A sender ID is 1 to 11 ASCII letters, digits
  or spaces with at least one letter or digit (the document's example is ``"YourBrand"``: a
  name; no ``.``, ``&`` or ``_``; :func:`~sms_worker.addresses.alphanumeric_sender_problem`), or a phone
  number of up to 15 digits with an optional ``+`` (:data:`SENDER_IDS`, answered with
  ``INVALID_SENDER`` otherwise). Routing knows it (:meth:`DexatelAccount.eligibility`), so a message
  from another sender is refused at enqueue or routed elsewhere, and :class:`DexatelAccount`
  checks the default so that a typo stops the account at start-up instead of failing its backlog.
- No validity, priority, flash or encoding parameters are documented: those fields of an
  :class:`~sms_worker.providers.base.OutboundMessage` are not sent, and Dexatel picks GSM-7 or
  UCS-2 from the text. The send answer carries no part count.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Final, Literal
from urllib.parse import quote

import httpx

from sms_worker.addresses import SenderGrammar, SenderIdRules
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.base import Accepted, DeliveryReceipt, OneRecipientPerRequest, OutboundMessage
from sms_worker.providers.eligibility import Eligibility
from sms_worker.providers.failures import ErrorClass, ErrorKind
from sms_worker.providers.plumbing import bad_response, callback_json
from sms_worker.providers.schema import AccountBase, Credential, SenderId, fits
from sms_worker.providers.timestamps import parse_timestamp

SENDER_IDS: Final = SenderIdRules(
    alphanumeric=SenderGrammar(re.compile(r"[A-Za-z0-9 ]{1,11}", re.ASCII), "1 to 11 letters, digits or spaces"),
    numeric=SenderGrammar(re.compile(r"\+?[0-9]{1,15}", re.ASCII), "a phone number of up to 15 digits"),
    source="Dexatel's sender IDs, as the adapter reads its document",
)
"""The sender IDs Dexatel takes in ``from`` (see the module docstring)."""


class DexatelAccount(AccountBase):
    """``type = "dexatel"``: credential ``api_key``; ``default_sender`` (required, because every
    request needs a ``from``)."""

    type: Literal["dexatel"]
    api_key: Credential
    default_sender: Annotated[SenderId, fits(SENDER_IDS.accepts, SENDER_IDS.says)]

    def eligibility(self) -> Eligibility:
        """:data:`SENDER_IDS`, for a message's sender or the default; any valid Unicode text (JSON)."""
        return replace(super().eligibility(), sender_ids=SENDER_IDS, default_sender=self.default_sender)


class DexatelAdapter(OneRecipientPerRequest):
    """One Dexatel API key. Stateless: every request carries the key, so there is no session
    to keep or renew, and one instance is safe to share across threads."""

    zone = None
    """Times are RFC 3339, offset included: one without is ambiguous, never read in a guessed zone."""

    errors = {
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
    statuses = {
        "queued": Delivery.QUEUED,
        "sent": Delivery.SENT,
        "delivered": Delivery.DELIVERED,
        "failed": Delivery.REJECTED,
        "undelivered": Delivery.UNDELIVERABLE,
    }

    def __init__(self, name: str, account: DexatelAccount, client: httpx.Client) -> None:
        super().__init__(name, account.base_url, client, {"Authorization": f"Bearer {account.api_key.get_secret_value()}"})
        self._default_sender = account.default_sender

    def send_one(self, message: OutboundMessage) -> Accepted:
        recipient = message.recipient if message.recipient.startswith("+") else f"+{message.recipient}"
        payload = {"from": message.sender or self._default_sender, "to": recipient, "text": message.text}
        body = self.request_json("POST", "/v1/sms/send", json=payload)
        message_id, word = body.get("message_id"), body.get("status")
        if not message_id or not isinstance(word, str):
            raise bad_response("send answered without message_id and status")
        return Accepted(str(message_id), word, self.delivery(word))

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        body = self.request_json("GET", f"/v1/sms/{quote(provider_message_id, safe='')}")
        word = body.get("status")
        if not isinstance(word, str):
            raise bad_response("status answered without a status")
        return self._receipt(provider_message_id, word, parse_timestamp(body.get("updated_at"), zone=self.zone))

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        """One webhook POST, one receipt. ValueError for anything but the assumed JSON object."""
        event = callback_json(body, content_type, "a Dexatel webhook")
        if not isinstance(event, dict):
            raise ValueError("Dexatel webhook body is not a JSON object")
        message_id, word, timestamp = event.get("message_id"), event.get("status"), event.get("timestamp")
        if not isinstance(message_id, str) or not message_id or not isinstance(word, str) or not word:
            raise ValueError("Dexatel webhook needs message_id and status")
        moment = parse_timestamp(timestamp, zone=self.zone)
        if timestamp is not None and moment is None:
            raise ValueError(f"Dexatel webhook timestamp is not RFC 3339 with an offset: {timestamp!r}")
        return [self._receipt(message_id, word, moment)]

    def verify(self) -> str:
        """The balance call: free, authenticated, and it says whether there is money to send
        (none left: ``INSUFFICIENT_FUNDS``, account-wide, as a send would meet it)."""
        body = self.request_json("GET", "/v1/account/balance")
        balance, currency = body.get("balance"), body.get("currency")
        if isinstance(balance, bool) or not isinstance(balance, int | float):
            raise bad_response("balance answered without a number")
        return self.prepaid_balance(balance, str(currency or ""), "INSUFFICIENT_FUNDS")

    def _receipt(self, message_id: str, word: str, moment: datetime | None) -> DeliveryReceipt:
        """``moment`` is the last status change: the delivery time, once the word says delivered."""
        delivery = self.delivery(word)
        return DeliveryReceipt(message_id, word, delivery, moment if delivery is Delivery.DELIVERED else None)
