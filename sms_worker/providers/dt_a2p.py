"""Deutsche Telekom A2P SMS API (``../shared/seeds/dt-a2p-sms-api.txt``): prepaid, one recipient
per request, verified sender IDs only.

What the document says, and this adapter keeps: every request carries the API key in the
``X-API-Key`` header; a message is sent with an HTTP POST and delivery reports are fetched
with an HTTP GET; one recipient per request; at most 50 verified sender IDs; alphanumeric
sender IDs only to some countries; 160 GSM characters per part, longer texts billed as
several parts; every request is charged from the prepaid balance, even one to a wrong number
or with a sender ID the operator does not support.

Assumptions where the document is silent (it gives no paths, fields or error codes):

- ``POST <base>/v1/sms`` with the JSON object ``{"from", "to", "text"}``, both numbers in
  E.164 with ``+`` (the document asks for E.164 when a sender number is verified). It answers
  ``201`` with the delivery report below plus ``"balance"`` (what is left after the charge);
  ``id`` is a string, ``status`` one of the words below.
- ``GET <base>/v1/sms/{id}`` is the delivery report: ``{"id", "status", "to", "from",
  "parts", "cost", "currency", "created_at", "delivered_at"}``, times in ISO 8601 UTC,
  ``delivered_at`` null until the message is delivered.
- No status check of many messages at once: the document names "Request delivery Reports
  (GET)" and nothing more (no path, no parameter, no listing), so a batch or listing form would
  be invented. Each message is checked alone; the poller's budget and overdue rule are what
  bound the checks (:mod:`sms_worker.dispatch.checks`).
- ``GET <base>/v1/balance`` answers ``{"balance", "currency"}`` and costs nothing; it is
  :meth:`DtA2pAdapter.verify`, and so what opening the account at worker start calls. A balance
  of zero or less is ``INSUFFICIENT_BALANCE``, account-wide.
- Status words: ``queued``, ``sent``, ``delivered``, ``undelivered``, ``rejected``,
  ``expired``, ``deleted``, ``unknown``, in any letter case (as every adapter reads its words:
  :mod:`~sms_worker.providers.words`); anything else is UNKNOWN.
- Errors are HTTP 4xx/5xx with ``{"error": {"code", "message"}}``; the codes and their
  classes are in ``DtA2pAdapter.errors`` below. That body is an error under any status, ``200``
  included (a code the table lacks is then permanent for the message). A code not in that table is classified by its HTTP status
  (:func:`~sms_worker.providers.plumbing.raise_for_http_status`), so a new 5xx code is retried.
- The API takes no validity, priority, flash or encoding parameter: those fields
  of a message are not sent. The platform picks GSM-7 or UCS-2 from the text itself.
- Delivery callbacks are not in the document: :meth:`DtA2pAdapter.parse_callback` reads a
  POSTed delivery report in the same shape as the GET one (an object, or a list of them).

Account options (:class:`DtA2pAccount`): ``default_sender`` (required: the API needs a sender,
and a message without one gets it), ``senders`` (the verified sender IDs, at most 50, the default
among them; when given, a message from any other sender is refused here, without a request that
would be charged) and ``alphanumeric_countries`` (ISO 3166 alpha-2 codes; when given, an
alphanumeric sender to a number of any other country (or of no country) is refused here,
likewise; the rule is :func:`sms_worker.addresses.sender_refusal`, which routing applies too).
Sender IDs compare exactly as written.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, model_validator

from sms_worker.addresses import ALPHANUMERIC_SENDER_NOT_ALLOWED, SENDER_NOT_VERIFIED, sender_refusal
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.base import Accepted, DeliveryReceipt, OneRecipientPerRequest, OutboundMessage
from sms_worker.providers.eligibility import Eligibility
from sms_worker.providers.failures import ErrorClass, ErrorKind, ProviderError
from sms_worker.providers.plumbing import bad_response, callback_json, message_id_of
from sms_worker.providers.schema import AccountBase, Credential, SenderId, SenderIds
from sms_worker.providers.timestamps import parse_timestamp

MAX_SENDERS: Final = 50
"""The document: sender ID verification is "limited to 50 sender IDs"."""
INSUFFICIENT_BALANCE: Final = "INSUFFICIENT_BALANCE"


def _verifiable(senders: frozenset[str]) -> frozenset[str]:
    if len(senders) > MAX_SENDERS:
        raise ValueError(f"lists {len(senders)} sender IDs; the API verifies at most {MAX_SENDERS}")
    return senders


class DtA2pAccount(AccountBase):
    """``type = "dt-a2p"``: credential ``api_key``; options as the module says."""

    type: Literal["dt-a2p"]
    api_key: Credential
    default_sender: SenderId
    senders: Annotated[SenderIds, AfterValidator(_verifiable)] | None = None

    def eligibility(self) -> Eligibility:
        """The ``senders`` and ``alphanumeric_countries`` rules, for a message's sender or the
        default; any valid Unicode text (JSON)."""
        return replace(super().eligibility(), default_sender=self.default_sender)

    @model_validator(mode="after")
    def _default_sender_verified(self) -> DtA2pAccount:
        if self.senders is not None and self.default_sender not in self.senders:
            raise ValueError(f"default_sender {self.default_sender!r} is not among the verified senders")
        return self


class DtA2pAdapter(OneRecipientPerRequest):
    """One prepaid Deutsche Telekom A2P account. Holds no state but its settings: thread-safe.
    A code not in ``errors`` met in an error answer is classified by its HTTP status
    (:meth:`~sms_worker.providers.base.AdapterBase.request`), so a new 5xx code is retried."""

    errors = {
        "INVALID_API_KEY": ErrorClass(ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
        INSUFFICIENT_BALANCE: ErrorClass(ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
        SENDER_NOT_VERIFIED: ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
        ALPHANUMERIC_SENDER_NOT_ALLOWED: ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
        "INVALID_RECIPIENT": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "INVALID_REQUEST": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "MISSING_PARAMETER": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "INVALID_PARAMETER": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "MESSAGE_NOT_FOUND": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "RATE_LIMITED": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
        "INTERNAL_ERROR": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
        "SERVICE_UNAVAILABLE": ErrorClass(ErrorKind.TRANSIENT, False, Status.UNDELIVERABLE),
    }
    statuses = {
        "queued": Delivery.QUEUED,
        "sent": Delivery.SENT,
        "delivered": Delivery.DELIVERED,
        "undelivered": Delivery.UNDELIVERABLE,
        "rejected": Delivery.REJECTED,
        "expired": Delivery.EXPIRED,
        "deleted": Delivery.UNDELIVERABLE,
        "unknown": Delivery.UNDETERMINED,
    }
    zone = UTC
    """The assumed delivery report gives its times in UTC (an explicit offset wins)."""

    def __init__(self, name: str, account: DtA2pAccount, client: httpx.Client) -> None:
        super().__init__(name, account.base_url, client, {"X-API-Key": account.api_key.get_secret_value()})
        self._default_sender = account.default_sender
        self._senders = account.senders
        self._countries = account.alphanumeric_countries

    def send_one(self, message: OutboundMessage) -> Accepted:
        """Refuse locally what the API would refuse and charge for anyway; then POST."""
        sender = message.sender or self._default_sender
        refused = sender_refusal(sender, message.recipient, senders=self._senders, alphanumeric_countries=self._countries)
        if refused is not None:
            raise self.error(refused.code, refused.reason)
        body = self.request_json("POST", "/v1/sms", json={"from": sender, "to": message.recipient, "text": message.text})
        message_id, word = body.get("id"), body.get("status")
        if message_id in (None, "") or not isinstance(word, str):
            raise bad_response("send answered without id or status")
        segments = body.get("parts")
        return Accepted(str(message_id), word, self.delivery(word), segments if isinstance(segments, int) else None)

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        return self._receipt(self.request_json("GET", f"/v1/sms/{quote(provider_message_id, safe='')}"))

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        """A delivery report as the GET answers it, or a JSON list of them (assumed format); every
        report of a list counts, in the order given."""
        document = callback_json(body, content_type, "a DT A2P delivery report")
        items = document if isinstance(document, list) else [document]
        try:
            return [self._receipt(item) for item in items]
        except ProviderError as exc:
            raise ValueError(f"not a delivery report: {exc.text}") from None

    def balance(self) -> tuple[float, str]:
        """The prepaid balance and its currency; the call itself is free."""
        body = self.request_json("GET", "/v1/balance")
        amount = body.get("balance")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise bad_response("balance answered without a balance")
        return float(amount), str(body.get("currency") or "EUR")

    def verify(self) -> str:
        """The free balance call; an empty prepaid account is ``INSUFFICIENT_BALANCE``, account-wide."""
        return self.prepaid_balance(*self.balance(), INSUFFICIENT_BALANCE)

    def _receipt(self, body: Any) -> DeliveryReceipt:
        """The delivery report of the GET (and of callbacks); ``delivered_at`` is UTC in the API."""
        message_id = message_id_of(body.get("id")) if isinstance(body, dict) else None
        if message_id is None or not isinstance(body.get("status"), str):
            raise bad_response("a delivery report needs an id (a string or an integer) and a status (a string)")
        word = body["status"]
        return DeliveryReceipt(message_id, word, self.delivery(word), parse_timestamp(body.get("delivered_at"), zone=self.zone))
