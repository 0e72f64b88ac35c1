"""Telefoon SMS API v1 (``../shared/seeds/telefoon-sms-openapi.yml``): JSON, ``X-API-Key``.

The base URL is the document's server URL (``https://api.telefoon.com/v1/sms``) or the sandbox's
``http://<host>/telefoon/v1/sms``; operations are ``POST/GET /messages`` and
``GET/DELETE /messages/{message_id}``. One recipient per request.

Assumptions where the document is silent:
- Errors: the document defines no error body. Assumed: HTTP 400, 401, 403, 404, 429 or 5xx with
  a JSON body ``{"error_code": <int>, "error_message": "..."}``, the same two fields a Message
  carries (a body with an ``id`` is a Message). Such a body is an error under any status, 200
  included. The codes (table ``ERRORS`` below) are modelled on Twilio's, whose API this one
  follows (``status_callback``, ``num_segments``, ``price_unit``). An answer without such a
  body, or with a code not in the table, is classified by its HTTP status alone
  (:func:`~sms_worker.providers.plumbing.raise_for_http_status`).
- A ``failed`` or ``undelivered`` message carries one of the delivery codes of the same table
  in ``error_code``; it refines the final status (``30007`` filtered -> DENIED, ``30001``
  expired -> EXPIRED, ``30008`` unknown -> UNKNOWN), else both words mean UNDELIVERABLE.
- ``received`` is an inbound message's state, not an outbound one: it maps to UNKNOWN.
- The Message has no delivery time: ``DeliveryReceipt.delivered_at`` is left empty (the worker
  uses the moment it learns of the delivery). ``date_created`` and ``date_sent`` are RFC 3339
  ``date-time`` (offset required); one without an offset, or in any other format, is absent
  (``TelefoonAdapter.zone`` is None), read the same way from an answer and from a callback.
- ``status_callback`` webhooks POST one Message object as JSON, the same shape ``GET
  /messages/{message_id}`` answers; an inbound message posted there is not a delivery receipt.
- ``page`` counts from 1, ``page_size`` defaults to 50 (at most 100, as the document says),
  ``total`` counts every matching message, and messages are listed oldest first.
- Status checks of many messages at once read the outbound listing from its newest page back
  (:meth:`TelefoonAdapter.check_many`): the document gives no other way to ask many statuses in
  one request (no filter by id or time). This assumes the listing is oldest first, like the
  search below; were it not, messages are not found there and each is asked alone.
- After an ambiguous attempt the outbound listing is searched for the message (same ``to`` and
  ``from``, same ``body`` or a rewriting of it, created within the lost attempt's time window:
  :meth:`TelefoonAdapter.find_sent`), so it is adopted instead of sent twice. The listing has no
  time or recipient filter, so the window is found by position, which needs every listed message
  to carry ``date_created`` and the list to stay in creation order; the provider's clock is read
  from its answers' ``Date`` header (HTTP requires one). The document gives no way to attach our
  own reference to a message, so recipient, sender and text are what match: a message from
  another sender is another user's of the key, not ours; one listed without ``body`` (the schema
  does not require it) may be ours, and is never taken for "not there". A listed message another
  of our messages attempted in the same window already holds is not adopted (the dispatcher
  checks).
- Telefoon has no priority, validity, flash or unicode switch: those fields of
  :class:`~sms_worker.providers.base.OutboundMessage` are not sent.
- ``from`` is an E.164 number with its ``+`` or an alphanumeric name of at most 11 letters,
  digits or spaces with at least one letter (:data:`SENDER_IDS`); routing knows it, so a message
  from another sender is refused at enqueue or routed to another account.
"""

from __future__ import annotations

import re
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import httpx

from sms_worker.addresses import SenderGrammar, SenderIdRules
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.base import (
    Accepted,
    DeliveryReceipt,
    ManyChecked,
    OneRecipientPerRequest,
    OutboundMessage,
    Searched,
    SentMatches,
    SentWindow,
    StatusQuery,
)
from sms_worker.providers.eligibility import Eligibility
from sms_worker.providers.failures import ErrorClass, ErrorKind
from sms_worker.providers.plumbing import bad_response, callback_json, json_object, server_time
from sms_worker.providers.schema import AccountBase, Credential, HttpUrl, SenderId, Trimmed, fits
from sms_worker.providers.timestamps import parse_timestamp
from sms_worker.providers.words import same_word
from sms_worker.text.rewrites import alike

MAX_PAGE_SIZE: Final = 100
LISTING_SLACK: Final = timedelta(seconds=60)
"""How far before the earliest asked message left (our clock) a status check reads the listing
back (its ``date_created``, the provider's clock): room for the two clocks' difference and the
listing's whole seconds. Only the cost depends on it: a message not found is asked alone."""
_OUTBOUND: Final = {"direction": "outbound"}
DIRECTIONS: Final = ("inbound", "outbound")
STATUSES: Final = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "received")
_ALPHANUMERIC: Final = SenderGrammar(
    re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}", re.ASCII), "an alphanumeric name of at most 11 letters, digits or spaces, with a letter"
)
SENDER_IDS: Final = SenderIdRules(
    alphanumeric=_ALPHANUMERIC,
    numeric=SenderGrammar(re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII), "an E.164 number with its + (+31612345678)"),
    source="Telefoon's OpenAPI document: 'phone number or alphanumeric sender name (max 11 chars)', numbers in E.164",
)
"""The senders Telefoon takes in ``from``; the sandbox answers 400/21212 to others."""


class TelefoonAccount(AccountBase):
    """``type = "telefoon"``: credential ``api_key``; options ``default_sender`` (required:
    Telefoon refuses a message without ``from``), ``sender_id``, ``status_callback`` (an
    http(s) URL), ``gdpr_consent_ref``, each sent with every message. Bad options fail at
    start-up instead of on every message."""

    type: Literal["telefoon"]
    api_key: Credential
    default_sender: Annotated[SenderId, fits(SENDER_IDS.accepts, SENDER_IDS.says)]
    sender_id: Annotated[SenderId, fits(_ALPHANUMERIC.pattern.fullmatch, _ALPHANUMERIC.says)] | None = None
    status_callback: HttpUrl | None = None
    gdpr_consent_ref: Trimmed | None = None

    def eligibility(self) -> Eligibility:
        """:data:`SENDER_IDS`, for a message's sender or the default; any valid Unicode text (JSON)."""
        return replace(super().eligibility(), sender_ids=SENDER_IDS, default_sender=self.default_sender)


_PERMANENT: Final = ErrorKind.PERMANENT
_TRANSIENT: Final = ErrorClass(ErrorKind.TRANSIENT)

ERRORS: Final[dict[int, ErrorClass]] = {
    # Request errors (assumed, see the module docstring).
    20001: ErrorClass(_PERMANENT),  # invalid request: not JSON, a bad parameter
    20003: ErrorClass(_PERMANENT, account_wide=True),  # authentication failed: bad X-API-Key
    20404: ErrorClass(_PERMANENT, status=Status.UNKNOWN),  # no such message (or erased)
    20429: _TRANSIENT,  # too many requests
    20500: _TRANSIENT,  # internal error
    20503: _TRANSIENT,  # service unavailable
    21211: ErrorClass(_PERMANENT),  # 'to' is not an E.164 number
    21212: ErrorClass(_PERMANENT, status=Status.REJECTED),  # 'from' or 'sender_id' refused
    21602: ErrorClass(_PERMANENT),  # no message body
    21603: ErrorClass(_PERMANENT, status=Status.REJECTED),  # no 'from'
    21604: ErrorClass(_PERMANENT),  # no 'to'
    21609: ErrorClass(_PERMANENT, account_wide=True),  # status_callback is not a URL (an account option)
    21610: ErrorClass(_PERMANENT, status=Status.REJECTED),  # recipient unsubscribed (STOP)
    30002: ErrorClass(_PERMANENT, account_wide=True),  # account suspended
    # Delivery errors, on failed/undelivered messages (and refusals that carry them).
    30001: ErrorClass(_PERMANENT, status=Status.EXPIRED),  # expired before delivery
    30003: ErrorClass(_PERMANENT),  # unreachable handset
    30005: ErrorClass(_PERMANENT),  # unknown handset
    30007: ErrorClass(_PERMANENT, status=Status.REJECTED),  # filtered by the carrier
    30008: ErrorClass(_PERMANENT, status=Status.UNKNOWN),  # unknown error
}


@dataclass(frozen=True, slots=True)
class TelefoonMessage:
    """One Message as the API describes it, with its canonical status beside the provider's."""

    id: str
    status: str
    canonical: Delivery | None
    direction: str
    sender: str
    to: str
    body: str | None = None
    num_segments: int | None = None
    price: str | None = None
    price_unit: str | None = None
    date_created: datetime | None = None
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None

    @classmethod
    def from_json(cls, data: object) -> TelefoonMessage:
        """ValueError unless ``data`` is a Message object with its required fields."""
        if not isinstance(data, dict):
            raise ValueError("a Telefoon Message must be a JSON object")
        missing = [name for name in ("id", "status", "direction", "from", "to") if not isinstance(data.get(name), str)]
        if missing:
            raise ValueError(f"a Telefoon Message needs string field(s) {', '.join(missing)}")
        error_code = data.get("error_code")
        if error_code is not None and (isinstance(error_code, bool) or not isinstance(error_code, int)):
            raise ValueError("error_code must be an integer")
        return cls(
            id=data["id"],
            status=data["status"],
            canonical=TelefoonAdapter.delivery_of(data["status"], error_code),
            direction=data["direction"],
            sender=data["from"],
            to=data["to"],
            body=data.get("body"),
            num_segments=data.get("num_segments"),
            price=data.get("price"),
            price_unit=data.get("price_unit"),
            date_created=parse_timestamp(data.get("date_created"), zone=TelefoonAdapter.zone),
            date_sent=parse_timestamp(data.get("date_sent"), zone=TelefoonAdapter.zone),
            error_code=error_code,
            error_message=data.get("error_message"),
        )

    @property
    def failure(self) -> str | None:
        """Why it failed, as the Message says it (``30003: Unreachable destination handset``);
        None without an ``error_code``."""
        if self.error_code is None:
            return None
        return f"{self.error_code}: {self.error_message}" if self.error_message else str(self.error_code)

    def receipt(self) -> DeliveryReceipt:
        return DeliveryReceipt(self.id, self.status, self.canonical, provider_error=self.failure)

    def accepted(self) -> Accepted:
        return Accepted(self.id, self.status, self.canonical, self.num_segments, self.failure)


class TelefoonAdapter(OneRecipientPerRequest):
    """One Telefoon API key. Stateless between calls, so it is safe to share across threads."""

    errors = ERRORS
    zone = None
    """``date-time`` is RFC 3339: a time without an offset is ambiguous and not read."""
    statuses = {
        "queued": Delivery.QUEUED,
        "sending": Delivery.QUEUED,
        "sent": Delivery.SENT,
        "delivered": Delivery.DELIVERED,
        "undelivered": Delivery.UNDELIVERABLE,
        "failed": Delivery.UNDELIVERABLE,
    }

    @staticmethod
    def error_body(body: Any) -> tuple[Hashable, str] | None:
        """The assumed error body, ``{"error_code": <int>, "error_message": "..."}``, under any
        HTTP status. A Message carries the same two fields once it has failed, so a body with an
        ``id`` is a Message, not an error."""
        code = body.get("error_code") if isinstance(body, dict) and "id" not in body else None
        if isinstance(code, int) and not isinstance(code, bool):
            return code, str(body.get("error_message") or "")
        return None

    def __init__(self, name: str, account: TelefoonAccount, client: httpx.Client) -> None:
        super().__init__(name, account.base_url, client, {"X-API-Key": account.api_key.get_secret_value()})
        self._default_sender = account.default_sender
        self._sender_id = account.sender_id
        self._status_callback = account.status_callback
        self._gdpr_consent_ref = account.gdpr_consent_ref

    @classmethod
    def delivery_of(cls, status: str, error_code: int | None = None) -> Delivery | None:
        """A Message's ``status`` (refined by its ``error_code`` once it failed) in our words; None
        for a status the OpenAPI document does not list (``received`` is an inbound message's). A
        failure whose code ends a message ``unknown`` (``30008``, unknown error) is a report that
        cannot tell yet (:attr:`~sms_worker.lifecycle.status.Delivery.UNDETERMINED`)."""
        canonical = cls.delivery(status)
        error = cls.errors.get(error_code) if error_code is not None else None
        if canonical is Delivery.UNDELIVERABLE and error is not None and error.kind is ErrorKind.PERMANENT:
            if error.status is Status.UNKNOWN:
                return Delivery.UNDETERMINED
            return Delivery(error.status.value)  # the other final statuses and reports share their words
        return canonical

    def send_one(self, message: OutboundMessage) -> Accepted:
        return _parse(self.request_json("POST", "/messages", json=self._send_body(message))).accepted()

    def find_sent(self, message: OutboundMessage, window: SentWindow) -> SentMatches:
        """The outbound messages to ``message.recipient`` from its sender (``from``: its own, or
        the account's ``default_sender``) created within ``window``: with its text (``exact``),
        or oldest first a rewriting of it or no ``body`` at all (``near``: it may be ours)
        (:class:`~sms_worker.providers.base.FindsSent`). A message from another sender is not
        ours, whatever its text (another user of the key); one whose sender differs only as a
        provider rewrites text may be (``near``).

        The listing filters by ``direction`` and ``status`` only (no time, no recipient), and is
        oldest first with a ``total``, so the window is found by position: the first page (of
        one message) gives the total and the provider's clock (its ``Date``, see
        :func:`_provider_window`); a binary search over pages of one finds the first message
        created in the window; pages of ``MAX_PAGE_SIZE`` are read from there until one goes past
        the window's end. If the first page read starts inside the window (messages before it
        were erased since the search), the page before it is read too, until one starts before
        the window. About ``log2(total)`` small requests and one page per hundred messages the
        account took during the window, however busy it was since. A listed message without
        ``date_created`` cannot be placed: BAD_RESPONSE."""
        asked_at, started = window.now(), time.monotonic()
        first = self._page(1, 1, _OUTBOUND)
        if first.total is None:
            raise bad_response("the message listing has no total")
        offset = first.server_time - asked_at if first.server_time is not None else timedelta(0)
        low, high = _provider_window(window, offset, time.monotonic() - started)
        page = (self._first_created_since(low, first.total) - 1) // MAX_PAGE_SIZE + 1
        listed = self._listed(page)
        while page > 1 and (not listed or listed[0].date_created is None or listed[0].date_created >= low):
            page -= 1
            listed = self._listed(page)
        sender = message.sender or self._default_sender
        exact: list[Accepted] = []
        near: list[Accepted] = []
        while True:
            for m in listed:
                if m.to != message.recipient or (m.date_created is not None and not low <= m.date_created <= high):
                    continue
                if m.sender == sender and m.body == message.text:
                    exact.append(m.accepted())
                elif alike(m.sender, sender) and (m.body is None or alike(m.body, message.text)):
                    near.append(m.accepted())
            if len(listed) < MAX_PAGE_SIZE or any(m.date_created is not None and m.date_created > high for m in listed):
                return SentMatches(Searched(low - offset, high - offset), tuple(exact), tuple(near))
            page += 1
            listed = self._listed(page)

    def _listed(self, page: int) -> list[TelefoonMessage]:
        return [_parse(entry) for entry in self._page(page, MAX_PAGE_SIZE, _OUTBOUND).entries]

    def _first_created_since(self, moment: datetime, total: int) -> int:
        """The position (from 1) of the first outbound message created at or after ``moment``;
        ``total + 1`` if none is. Pages of one message, a binary search."""
        low, high = 1, total + 1
        while low < high:
            middle = (low + high) // 2
            entries = self._page(middle, 1, _OUTBOUND).entries
            if not entries:  # the listing shrank meanwhile (an erasure): look before
                high = middle
                continue
            created = _parse(entries[0]).date_created
            if created is None:
                raise bad_response(f"listed message {middle} has no date_created: the listing cannot be searched by time")
            if created < moment:
                low = middle + 1
            else:
                high = middle
        return low

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        return self.message(provider_message_id).receipt()

    def check_many(self, queries: Sequence[StatusQuery], max_requests: int) -> ManyChecked:
        """The receipts of as many of ``queries`` as the outbound listing shows within
        ``max_requests`` requests (:class:`~sms_worker.providers.base.ChecksMany`).

        The listing filters by direction and status only (no id, no time) and is oldest first
        with a ``total``; the messages a poller asks about were mostly sent seconds ago, at the
        listing's end. So: a page of one for the total, then pages of ``MAX_PAGE_SIZE`` from the
        newest back, until every asked message is found, or a page begins before the earliest
        asked message left (less :data:`LISTING_SLACK`; the clocks are not compared, the slack
        covers them), or a page found none while as many pages were read as messages are left
        to find (asking each alone is then no dearer), or the requests are spent. At steady
        state one request answers up to a hundred messages; a message not found is left out (the
        poller asks it alone)."""
        wanted = {query.provider_message_id for query in queries}
        departures = [query.sent_at for query in queries if query.sent_at is not None]
        earliest = min(departures) - LISTING_SLACK if departures and len(departures) == len(queries) else None
        first = self._page(1, 1, _OUTBOUND)
        if first.total is None:
            raise bad_response("the message listing has no total")
        found: dict[str, DeliveryReceipt] = {}
        requests, pages, page = 1, 0, (first.total - 1) // MAX_PAGE_SIZE + 1
        while len(found) < len(wanted) and page >= 1 and requests < max_requests:
            listed = self._listed(page)
            requests, pages, page = requests + 1, pages + 1, page - 1
            hits = {m.id: m.receipt() for m in listed if m.id in wanted and m.id not in found}
            found.update(hits)
            oldest = listed[0].date_created if listed else None
            if oldest is None or (earliest is not None and oldest < earliest) or (not hits and pages >= len(wanted) - len(found)):
                break
        return ManyChecked(found, requests)

    def message(self, provider_message_id: str) -> TelefoonMessage:
        """The whole Message record (``getMessage``); a ProviderError 20404 once it is erased."""
        return _parse(self.request_json("GET", _message_path(provider_message_id)))

    def delete_message(self, provider_message_id: str) -> None:
        """Erase a message record at Telefoon (GDPR right to erasure); afterwards it is not found."""
        self.request("DELETE", _message_path(provider_message_id))

    def messages(self, *, direction: str | None = None, status: str | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[TelefoonMessage]:
        """Every message matching the filters, fetched a page at a time as the caller iterates.
        Filters the API would refuse raise ValueError here, before any request."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}: Telefoon refuses larger pages")
        filters = {name: value for name, value in (("direction", direction), ("status", status)) if value is not None}
        return self._pages(filters, page_size)

    def _pages(self, filters: dict[str, str], page_size: int) -> Iterator[TelefoonMessage]:
        page, seen = 1, 0
        while True:
            listed = self._page(page, page_size, filters)
            entries, total = listed.entries, listed.total
            for entry in entries:
                yield _parse(entry)
            seen += len(entries)
            if len(entries) < page_size or (total is not None and seen >= total):
                return
            page += 1

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        """A ``status_callback`` webhook: one Message object as JSON (assumed, see the module)."""
        data = callback_json(body, content_type, "a Telefoon status callback")
        message = TelefoonMessage.from_json(data)
        if not same_word(message.direction, "outbound"):
            return []
        return [message.receipt()]

    def verify(self) -> str:
        """One message-list page of one: proves the key without sending anything."""
        first = self._page(1, 1, {})
        return f"API key accepted; {first.total if first.total is not None else len(first.entries)} message(s) on record"

    def _send_body(self, message: OutboundMessage) -> dict[str, str]:
        body = {"to": message.recipient, "from": message.sender or self._default_sender, "body": message.text}
        optional = {
            "sender_id": self._sender_id,
            "status_callback": self._status_callback,
            "gdpr_consent_ref": self._gdpr_consent_ref,
        }
        return body | {name: value for name, value in optional.items() if value is not None}

    def _page(self, page: int, page_size: int, filters: dict[str, str]) -> _Page:
        params = {**filters, "page": page, "page_size": page_size}
        response = self.request("GET", "/messages", params=params)
        body = json_object(response)
        entries, total = body.get("messages", []), body.get("total")
        if not isinstance(entries, list):
            raise bad_response("messages is not a list")
        return _Page(entries, total if isinstance(total, int) and not isinstance(total, bool) else None, server_time(response))


@dataclass(frozen=True, slots=True)
class _Page:
    entries: list[Any]
    total: int | None
    server_time: datetime | None
    """The answer's ``Date``: the provider's clock, to the second."""


def _provider_window(window: SentWindow, offset: timedelta, round_trip: float) -> tuple[datetime, datetime]:
    """``window`` on the provider's clock, as bounds its ``date_created`` can be compared with.

    The ``offset`` of its clock from ours is read from the first answer: ``Date`` (whole seconds,
    made between our request and its answer) less our clock when the request left, so the true
    offset is within ``round_trip`` below and a second above. ``date_created`` is whole seconds
    too (truncated: a second below). Without a ``Date`` the clocks are taken to agree. Either way
    ``window.slack`` widens both sides."""
    low = window.start + offset - timedelta(seconds=round_trip + 1) - window.slack
    high = window.end + offset + timedelta(seconds=1) + window.slack
    return low, high


def _parse(data: object) -> TelefoonMessage:
    """A Message the API answered; a malformed one is :func:`~sms_worker.providers.plumbing.bad_response`."""
    try:
        return TelefoonMessage.from_json(data)
    except ValueError as exc:
        raise bad_response(str(exc)) from None


def _message_path(provider_message_id: str) -> str:
    return f"/messages/{quote(provider_message_id, safe='')}"
