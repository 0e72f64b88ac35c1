"""The session-key SMS REST gateway (``../shared/seeds/session-key-sms-rest-quickstart.txt``).

``GET <base>/login?username=..&password=..`` answers ``user_key;Session_key``; every other call
sends both back as the headers ``user_key`` and ``Session_key`` (spelled exactly so: the
document warns that ``User-Key`` is not understood). ``POST <base>/sms`` takes one text for a
list of recipients and answers HTTP 201 with ``result``, ``order_id``, ``total_sent``,
``remaining_credits`` and ``internal_order_id``. This is the only multi-recipient API of the
set: :meth:`SessionKeyAdapter.send` sends messages that share a ``group_key`` (text, sender,
quality) as one order.

Assumptions where the quickstart is silent (most follow the public documentation of the same
gateway family, e.g. ``smsend/REST-API`` on GitHub):

- A session ends after 5 minutes without calls. The adapter logs in again before a call when it
  has been idle for :data:`RELOGIN_AFTER_IDLE`, and once more when any call answers 401 (the
  session was lost anyway); a second 401 right after a fresh login is transient.
- Login with a wrong username or password answers 404 (the family's "Credentials are
  incorrect"); 401 is read the same way. Either is ``BAD_CREDENTIALS``: permanent, account-wide.
- Errors other than 401 carry a JSON body ``{"result": "KO", "code": ..., "message": ...}``
  (the family says "details are in the body"); the codes are ``SessionKeyAdapter.errors``. Not enough
  credits is HTTP 400 ``NOT_ENOUGH_CREDITS``: permanent and account-wide. Such a body (``code``
  set, ``result`` not ``OK``) is read under any HTTP status, ``200`` included. An invalid recipient
  refuses the whole order (the family's default ``allowInvalidRecipients=false``) with HTTP 400
  ``INVALID_RECIPIENT`` and the refused numbers in ``recipients``: those messages fail, and the
  others are sent once more without them. A code not in the table is permanent, so an unknown
  answer never burns retries, except under 5xx and 429, which are transient unless the body
  names a code of the table.
- Times are ``yyyyMMddHHmmss`` (the PHP and Node examples) in the gateway's zone, Europe/Rome
  unless the ``timezone`` option says otherwise (the examples use Italian numbers):
  ``delivery_date`` in status answers is read so. sms_worker schedules itself and sends no
  ``scheduled_delivery_time``.
- Message state: the quickstart shows none. The family's ``GET <base>/sms/{order_id}`` answers
  ``{"recipient_number": n, "result": "OK", "recipients": [{"destination", "status",
  "delivery_date"}]}``; ``SessionKeyAdapter.statuses`` maps its statuses. :meth:`check` asks for the order
  and picks the recipient.
- ``provider_message_id`` is ``"<order_id>:<recipient>"``, the recipient as sent. One order never
  carries the same phone twice (two messages with equal text to one phone go in two orders),
  so that id names exactly one message.
- Delivery callbacks are not documented; :meth:`parse_callback` reads a JSON body shaped like
  the status answer plus ``order_id``.
- :meth:`verify` logs in afresh and reads the family's ``GET <base>/status``
  (``{"sms": [{"type": "N", "quantity": 1234}, ...]}``) for the credits left at its quality.
- ``sender`` is the alias (TPOA): null for the account's own; a custom one only with quality
  ``N`` (the family: low-quality messages go from a shared sender), of at most 11 ASCII letters,
  digits, spaces, ``.`` or ``-`` with at least one letter or digit (an alias names someone:
  :func:`~sms_worker.addresses.alphanumeric_sender_problem`), or a number of up to 16 digits with an optional ``+``; else 400
  ``INVALID_SENDER``. Routing knows it (:meth:`SessionKeyAccount.eligibility`), so such a message is
  refused at enqueue or routed to another account.
- ``priority``, ``validity_minutes``, ``unicode`` and ``flash`` have no field in this API and
  are not sent. ``Accepted.segments`` is sms_worker's own count of the
  text (GSM-7 or UCS-2): the gateway reports segments only as a total.

Account options (:class:`SessionKeyAccount`): ``quality`` (``N`` high, the default; ``L``
medium; ``LL`` low), ``max_recipients`` (recipients per order, default 100, at most 1000: the
quickstart names no limit, and 100 keeps one refused order small while still saving 99
requests in 100) and ``timezone`` (the gateway's).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import AfterValidator, Field

from sms_worker.addresses import SenderGrammar, SenderIdRules
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.logs import get_logger
from sms_worker.providers.base import MAX_RECIPIENTS_LIMIT, Accepted, AdapterBase, DeliveryReceipt, OutboundMessage, SendOutcome
from sms_worker.providers.eligibility import Eligibility
from sms_worker.providers.failures import ErrorClass, ErrorKind, Failure, ProviderError
from sms_worker.providers.plumbing import bad_response, callback_json, json_object, json_or_none, raise_for_http_status, transport_errors
from sms_worker.providers.schema import AccountBase, Credential, reason
from sms_worker.providers.sessions import Sessions
from sms_worker.providers.timestamps import parse_wall_clock
from sms_worker.providers.words import same_word
from sms_worker.text import analyze

Quality = Literal["N", "L", "LL"]
"""The document's ``MESSAGE_HIGH_QUALITY``, ``MESSAGE_MEDIUM_QUALITY`` and ``MESSAGE_LOW_QUALITY``."""
DEFAULT_MAX_RECIPIENTS: Final = 100
DEFAULT_TIMEZONE: Final = "Europe/Rome"
TIME_FORMAT: Final = "%Y%m%d%H%M%S"
RELOGIN_AFTER_IDLE: Final = 4 * 60
"""Log in again before a call rather than meet the gateway's 5 minutes of inactivity."""
ORDER_ANSWER_TTL: Final = 1.0
"""Seconds an order's status answer serves its other recipients' checks: the poller checks the
recipients of one order together, and one ``GET /sms/{order_id}`` answers for all of them."""
ORDER_ANSWER_CACHE: Final = 256
"""Orders whose answers are kept at most (expired ones are dropped when it is reached)."""

CUSTOM_SENDERS: Final = SenderIdRules(
    alphanumeric=SenderGrammar(re.compile(r"[A-Za-z0-9 .\-]{1,11}", re.ASCII), "an alias of at most 11 letters, digits, spaces, . or -"),
    numeric=SenderGrammar(re.compile(r"\+?[0-9]{1,16}", re.ASCII), "a number of up to 16 digits"),
    source="the gateway's custom sender (TPOA), with quality N",
)
"""The custom senders an account of quality ``N`` takes (see the module docstring)."""
NO_CUSTOM_SENDER: Final = SenderIdRules(None, None, "the gateway takes a custom sender only with quality N; this account's is lower")
"""Quality ``L`` and ``LL``: only the gateway's own sender (a message without ``sender``)."""

BAD_CREDENTIALS: Final = "BAD_CREDENTIALS"
UNAUTHORIZED: Final = "UNAUTHORIZED"
INVALID_RECIPIENT: Final = "INVALID_RECIPIENT"
ORDER_REFUSED: Final = "ORDER_REFUSED"
"""A message not sent because its order was refused for other recipients (transient)."""
BAD_MESSAGE_ID: Final = "BAD_MESSAGE_ID"
"""A status check of an id that is not ``<order_id>:<recipient>``."""
RECIPIENT_NOT_FOUND: Final = "RECIPIENT_NOT_FOUND"
"""A status check whose order does not list the message's recipient."""

_log = get_logger("providers.session_key")


def _zone_name(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone name, not {name!r}") from None
    return name


class SessionKeyAccount(AccountBase):
    """``type = "session-key"``: credentials ``username`` and ``password``; options as the module says."""

    type: Literal["session-key"]
    username: Credential
    password: Credential
    quality: Quality = "N"
    max_recipients: Annotated[int, Field(ge=1, le=MAX_RECIPIENTS_LIMIT), reason(f"must be an integer from 1 to {MAX_RECIPIENTS_LIMIT}")] = (
        DEFAULT_MAX_RECIPIENTS
    )
    timezone: Annotated[str, AfterValidator(_zone_name)] = DEFAULT_TIMEZONE
    """The gateway's zone, for ``delivery_date`` in its answers."""

    def eligibility(self) -> Eligibility:
        """:data:`CUSTOM_SENDERS` with quality ``N``, else :data:`NO_CUSTOM_SENDER`; any valid Unicode text (JSON)."""
        return replace(super().eligibility(), sender_ids=CUSTOM_SENDERS if self.quality == "N" else NO_CUSTOM_SENDER)


class RefusedRecipients(ProviderError):
    """An order refused for some of its recipients; the others may be sent without them."""

    def __init__(self, error: ProviderError, recipients: frozenset[str]) -> None:
        super().__init__(error.kind, error.code, error.text, account_wide=error.account_wide, status=error.status)
        self.recipients = recipients
        """The refused numbers, as :func:`phone_key` spells them."""


@dataclass(frozen=True, slots=True)
class Session:
    user_key: str
    session_key: str

    def headers(self) -> dict[str, str]:
        return {"user_key": self.user_key, "Session_key": self.session_key}


class SessionKeyAdapter(AdapterBase):
    """One gateway account. Keeps one session for every thread and sends orders of many recipients."""

    sessions: Sessions[Session]

    errors = {
        UNAUTHORIZED: ErrorClass(ErrorKind.REAUTHENTICATE, False, Status.UNDELIVERABLE),
        BAD_CREDENTIALS: ErrorClass(ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
        "USER_KEY_NOT_FOUND": ErrorClass(ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
        "NOT_ENOUGH_CREDITS": ErrorClass(ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
        "INVALID_SENDER": ErrorClass(ErrorKind.PERMANENT, False, Status.REJECTED),
        INVALID_RECIPIENT: ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "INVALID_PARAMETER": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "MISSING_PARAMETER": ErrorClass(ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
        "ORDER_NOT_FOUND": ErrorClass(ErrorKind.PERMANENT, False, Status.UNKNOWN),
    }
    statuses = {
        **dict.fromkeys(("WAITING", "SCHEDULED"), Delivery.QUEUED),
        **dict.fromkeys(("SENT", "WAIT4DLVR"), Delivery.SENT),
        "DLVRD": Delivery.DELIVERED,
        "TIMEOUT": Delivery.EXPIRED,
        **dict.fromkeys(("ERROR", "UNKNPFX", "UNKNRCPT", "INVALIDDST", "DEMO"), Delivery.UNDELIVERABLE),
        **dict.fromkeys(("TOOM4NUM", "TOOM4USER", "BLACKLISTED", "KO", "INVALIDCONTENTS"), Delivery.REJECTED),
    }
    """The family's recipient statuses. ``DEMO`` (sent in demo mode) reaches no phone and nothing
    more will be learnt of it: undeliverable, with the word kept beside."""
    zone: tzinfo = ZoneInfo(DEFAULT_TIMEZONE)
    """The gateway's zone for ``delivery_date``, polled or called back; the account's ``timezone``
    option sets it per account."""

    def __init__(self, name: str, account: SessionKeyAccount, client: httpx.Client, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, account.base_url, client)
        self.max_recipients = account.max_recipients
        self.quality = account.quality
        self.remaining_credits: int | None = None
        """Credits left as the last order or :meth:`verify` reported them."""
        self.sessions = Sessions(self._login, idle=RELOGIN_AFTER_IDLE, monotonic=monotonic)
        self._username = account.username.get_secret_value()
        self._password = account.password.get_secret_value()
        self.zone = ZoneInfo(account.timezone)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._order_answers: dict[str, tuple[float, dict[str, Any]]] = {}

    # -- sending --------------------------------------------------------------------------

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: dict[int, SendOutcome] = {}
        for order in self._orders(messages):
            self._submit(messages, order, outcomes, retry_refused=True)
        return [outcomes[index] for index in range(len(messages))]

    def group_key(self, message: OutboundMessage) -> Hashable:
        return (message.text, message.sender or None, self.quality)

    def _orders(self, messages: Sequence[OutboundMessage]) -> list[list[int]]:
        """Messages by group, at most ``max_recipients`` an order and no phone twice in one."""
        orders: list[tuple[Hashable, list[int], set[str]]] = []
        for index, message in enumerate(messages):
            group, phone = self.group_key(message), phone_key(message.recipient)
            for key, indices, phones in orders:
                if key == group and len(indices) < self.max_recipients and phone not in phones:
                    indices.append(index)
                    phones.add(phone)
                    break
            else:
                orders.append((group, [index], {phone}))
        return [indices for _, indices, _ in orders]

    def _submit(self, messages: Sequence[OutboundMessage], order: list[int], outcomes: dict[int, SendOutcome], *, retry_refused: bool) -> None:
        """One ``POST /sms``; its answer, or its failure, becomes the outcome of each message in it.

        When the gateway refuses the order for some recipients, only those it names fail; the
        others go once more without them. If that order is refused too, or the refusal names
        none of them, they were not sent and are retried later (the order was refused whole,
        so nothing of it reached a phone)."""
        first = messages[order[0]]
        recipients = [messages[i].recipient for i in order]
        try:
            order_id, segments = self._post_order(first, recipients)
        except RefusedRecipients as refused:
            named = [i for i in order if phone_key(messages[i].recipient) in refused.recipients]
            rest = [i for i in order if i not in named]
            for i in named:
                outcomes[i] = Failure(refused.kind, refused.code, "the gateway refused this recipient", status=refused.status)
            if rest and named and retry_refused:
                self._submit(messages, rest, outcomes, retry_refused=False)
                return
            for i in rest:
                outcomes[i] = Failure(ErrorKind.TRANSIENT, ORDER_REFUSED, "the order was refused for other recipients; not sent")
            return
        except ProviderError as error:
            for i in order:
                outcomes[i] = error.failure
            return
        for i, recipient in zip(order, recipients):
            outcomes[i] = Accepted(f"{order_id}:{recipient}", "WAITING", Delivery.QUEUED, segments)

    def _post_order(self, message: OutboundMessage, recipients: list[str]) -> tuple[str, int]:
        body: dict[str, Any] = {
            "message": message.text,
            "message_type": self.quality,
            "returnCredits": True,
            "recipient": recipients,
            "sender": message.sender or None,
        }
        answer = json_object(self._call("POST", "/sms", json=body))
        if not same_word(answer.get("result"), "OK"):
            raise self.error(str(answer.get("code") or answer.get("result") or "KO"), str(answer.get("message") or ""))
        order_id = answer.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise bad_response("POST /sms answered without an order_id")
        credits = answer.get("remaining_credits")
        if isinstance(credits, int) and not isinstance(credits, bool):
            self.remaining_credits = credits
        _log.debug("%s: order %s accepted for %d recipient(s), %s credits left", self.name, order_id, len(recipients), credits)
        return order_id, analyze(message.text).segments

    # -- status ---------------------------------------------------------------------------

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        order_id, _, recipient = provider_message_id.rpartition(":")
        if not order_id or not recipient:
            raise ProviderError(ErrorKind.PERMANENT, BAD_MESSAGE_ID, f"not <order_id>:<recipient>: {provider_message_id!r}")
        answer = self._order_answer(order_id)
        wanted = phone_key(recipient)
        for entry in answer.get("recipients") or []:
            if isinstance(entry, dict) and phone_key(str(entry.get("destination", ""))) == wanted:
                return self._receipt(provider_message_id, entry)
        raise ProviderError(ErrorKind.PERMANENT, RECIPIENT_NOT_FOUND, f"order {order_id} has no such recipient", status=Status.UNKNOWN)

    def _order_answer(self, order_id: str) -> dict[str, Any]:
        now = self._monotonic()
        with self._lock:
            cached = self._order_answers.get(order_id)
        if cached is not None and now - cached[0] < ORDER_ANSWER_TTL:
            return cached[1]
        answer = json_object(self._call("GET", f"/sms/{quote(order_id, safe='')}"))
        with self._lock:
            if len(self._order_answers) >= ORDER_ANSWER_CACHE:
                self._order_answers = {key: value for key, value in self._order_answers.items() if now - value[0] < ORDER_ANSWER_TTL}
            self._order_answers[order_id] = (now, answer)
        return answer

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        document = callback_json(body, content_type, "a session-key callback")
        if not isinstance(document, dict) or not isinstance(document.get("order_id"), str) or not isinstance(document.get("recipients"), list):
            raise ValueError("a session-key callback needs order_id and recipients[]")
        receipts = []
        for entry in document["recipients"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str) or not isinstance(entry.get("status"), str):
                raise ValueError("each callback recipient needs destination and status")
            destination = "+" + phone_key(entry["destination"])  # as sent: the producer's E.164
            receipts.append(self._receipt(f"{document['order_id']}:{destination}", entry))
        return receipts

    def _receipt(self, provider_message_id: str, entry: dict[str, Any]) -> DeliveryReceipt:
        word = str(entry.get("status") or "UNKNOWN")
        delivery = self.delivery(word)
        delivered_at = parse_wall_clock(entry.get("delivery_date"), TIME_FORMAT, self.zone) if delivery is Delivery.DELIVERED else None
        return DeliveryReceipt(provider_message_id, word, delivery, delivered_at)

    # -- the rest of the contract -------------------------------------------------------------

    def verify(self) -> str:
        """Logs in afresh and reads the credits left at this account's quality."""
        self.sessions.close()
        answer = json_object(self._call("GET", "/status"))
        for entry in answer.get("sms") or []:
            if isinstance(entry, dict) and same_word(entry.get("type"), self.quality) and isinstance(entry.get("quantity"), int):
                self.remaining_credits = entry["quantity"]
                return f"session ok, {entry['quantity']} credits for quality {self.quality}"
        return "session ok"

    # -- session and HTTP -----------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: dict[str, Any] | None = None) -> httpx.Response:
        """An authenticated call; a 401 logs in again once (unless another thread already has)."""
        return self.sessions.call(lambda session: self._request(method, path, session, json))

    def _login(self) -> Session:
        with transport_errors():
            response = self.client.get(f"{self.base_url}/login", params={"username": self._username, "password": self._password})
        if response.status_code in (401, 404):
            raise self.error(BAD_CREDENTIALS, "username or password refused at login")
        self._raise_for_error(response)
        user_key, separator, session_key = response.text.strip().partition(";")
        if not separator or not user_key or not session_key or ";" in session_key:
            raise bad_response("login did not answer user_key;Session_key")
        return Session(user_key, session_key)

    def _request(self, method: str, path: str, session: Session, body: dict[str, Any] | None) -> httpx.Response:
        headers = {**session.headers(), "Accept": "application/json"}
        with transport_errors():
            response = self.client.request(method, f"{self.base_url}{path}", headers=headers, json=body)
        if response.status_code == 401:
            raise self.error(UNAUTHORIZED, "user_key or Session_key refused")
        self._raise_for_error(response)
        return response

    def _raise_for_error(self, response: httpx.Response) -> None:
        """The gateway's own error code first, whatever the HTTP status (``200`` with ``{"result":
        "KO", "code": "NOT_ENOUGH_CREDITS"}`` is that error); the shared HTTP mapping where it
        gives none.

        Not :meth:`~sms_worker.providers.base.AdapterBase.request`: here a code not in the table
        is the gateway's word too, permanent under a success or 4xx status, while under 5xx and
        429 such a code is transient (see the module docstring)."""
        status = response.status_code
        body = json_or_none(response)
        if isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"] and not same_word(body.get("result"), "OK"):
            code, text = body["code"], str(body.get("message") or "")
            if code not in self.errors and (status >= 500 or status == 429):
                raise_for_http_status(response)
            error = self.error(code, text)
            refused = body.get("recipients")
            if error.code == INVALID_RECIPIENT and isinstance(refused, list) and refused:
                raise RefusedRecipients(error, frozenset(phone_key(str(number)) for number in refused))
            raise error
        raise_for_http_status(response)


def phone_key(number: str) -> str:
    """One spelling per phone (``+39...``, ``0039...`` and ``39...`` alike), to compare numbers."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits[2:] if number.strip().startswith("00") else digits
