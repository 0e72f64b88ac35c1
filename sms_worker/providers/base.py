"""The contract every adapter keeps, the values it answers with, and the base adapters derive from.

An *adapter* is the code that speaks one provider's API (one module each); an *account* is one
configured use of it (``[accounts.NAME]`` in the providers file, :mod:`.accounts`). The
dispatcher, the receipts poller and the callback receiver know adapters only through
:class:`Adapter`:

- ``send(messages)`` takes messages that share one :meth:`~Adapter.group_key` and returns one
  outcome per message, in order, as values: :class:`Accepted`, or a
  :class:`~sms_worker.providers.failures.Failure` classified by its
  :class:`~sms_worker.providers.failures.ErrorKind`. It never raises for a provider's failure.
- ``check``, ``verify`` and ``open`` raise :class:`~sms_worker.providers.failures.ProviderError`,
  whose ``failure`` is the same value; ``parse_callback`` raises ValueError for a body that is
  not a callback.
- ``close()`` is called once, when the worker process ends.
- An adapter whose API can list what it was sent also implements :class:`FindsSent`: after an
  ambiguous attempt it is asked before the message is sent again.
- An adapter whose API answers many statuses in one request also implements
  :class:`ChecksMany`: the status poller asks it for an account's due messages at once.

Adapters derive from :class:`AdapterBase` (from :class:`OneRecipientPerRequest` when the API
takes one recipient per request), declare their error codes and status words as data
(:attr:`AdapterBase.errors`, :attr:`AdapterBase.statuses`), as their documents spell them, and leave
the HTTP plumbing to :mod:`sms_worker.providers.plumbing`. The base reads every such word in any
letter case and with surrounding whitespace (:mod:`sms_worker.providers.words`), on every path.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import httpx

from sms_worker.lifecycle.status import Delivery
from sms_worker.priority import Priority
from sms_worker.providers.failures import UNLISTED_CODE, ErrorClass, Failure, ProviderError
from sms_worker.providers.plumbing import error_envelope, json_object, raise_for_error, transport_errors
from sms_worker.providers.sessions import Sessions
from sms_worker.providers.transport import parsed_url
from sms_worker.providers.words import Words, spelled


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What an adapter needs to submit one message; copied out of the row before any HTTP call.
    An API without a field for one of them leaves it out (each adapter's module says which)."""

    message_id: uuid.UUID
    """sms_worker's id of the message (no API here takes it: it groups and names, never travels)."""
    recipient: str
    """E.164 with ``+``."""
    text: str
    sender: str | None = None
    """None: the account's default sender, or the provider's."""
    priority: Priority = Priority.STANDARD
    validity_minutes: int | None = None
    unicode: bool | None = None
    """None: the adapter or the provider picks GSM-7 or UCS-2 from the text."""
    flash: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message: its id there, its word for the message's state, and that
    word in our vocabulary (None: a word the adapter does not know)."""

    provider_message_id: str
    provider_status: str
    delivery: Delivery | None
    segments: int | None = None
    """SMS segments the provider says it counted (its own `parts` field), when it says."""
    provider_error: str | None = None
    """The provider's own reason for a failed message, where it gives one beside its word
    (Telefoon's ``error_code`` and ``error_message``: ``30003: Unreachable destination handset``)."""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What the provider says of a message it accepted, polled (``check``) or posted (a
    callback): ``delivery`` is None for a word the adapter does not know, which is recorded and
    changes nothing; ``delivered_at`` is the provider's moment of delivery, when it gives one;
    ``provider_error`` its reason for a failed message, as for :class:`Accepted`."""

    provider_message_id: str
    provider_status: str
    delivery: Delivery | None
    delivered_at: datetime | None = None
    provider_error: str | None = None


SendOutcome = Accepted | Failure

MAX_RECIPIENTS_LIMIT: Final = 1000
"""The most messages one request of any adapter may carry (the largest ``max_recipients`` an
account model allows: Session Key's orders); the callback receiver takes as many receipts in one
body."""


class Adapter(Protocol):
    """The code that speaks one provider's API, for one account. Implementations must be safe
    to share across threads."""

    name: str
    """The account's name."""
    max_recipients: int
    """How many messages one request may carry, at most :data:`MAX_RECIPIENTS_LIMIT`: the
    dispatcher hands :meth:`send` at most that many, all with one :meth:`group_key`."""

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        """Submit messages in as few requests as the API allows; one outcome per message, in
        order. A failure of a whole request is that failure for each of its messages."""
        ...

    def group_key(self, message: OutboundMessage) -> Hashable:
        """Messages with equal keys may travel in one request (same text, sender, quality...)."""
        ...

    def check(self, provider_message_id: str) -> DeliveryReceipt:
        """Ask the provider where a message is, or raise ProviderError."""
        ...

    def parse_callback(self, body: bytes, content_type: str) -> list[DeliveryReceipt]:
        """The receipts in a delivery callback the provider posted; ValueError if it is not one."""
        ...

    def verify(self) -> str:
        """Prove the credentials work with the cheapest authenticated call; a one-line summary
        (balance, session...) for ``sms-worker accounts check``, or ProviderError (a prepaid
        account with nothing left included: every message would meet that)."""
        ...

    def open(self) -> None:
        """Get ready for the first message and prove the account usable, so neither the first
        batch is late nor a bad key found on it: log in where the API has sessions, else
        :meth:`verify`. Raise ProviderError if the account is unusable."""
        ...

    def close(self) -> None:
        """Let go of what :meth:`open` and the calls since took; the HTTP client is the caller's."""
        ...


@dataclass(frozen=True, slots=True)
class SentWindow:
    """When a lost attempt may have reached the provider, on our clock (aware datetimes): its
    request left at or after ``start`` and was over by ``end``. An adapter puts it on the
    provider's clock (measured from its answers) and widens it by ``slack`` on each side;
    ``now`` reads our clock, to measure the provider's against."""

    start: datetime
    end: datetime
    slack: timedelta
    now: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Searched:
    """The copies a listing search took in: those created from ``start`` to ``end``, on our
    clock (aware datetimes). Wider than the :class:`SentWindow` asked for, by what the adapter
    added to be sure (``slack``, the precision of the provider's clock and of its times)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SentMatches:
    """What a provider's listing holds, in a :class:`SentWindow`, to the message's recipient
    from its sender: copies with its very text (``exact``), and copies that may be it though
    their text is not (``near``: a text that differs only as a provider rewrites text,
    :func:`~sms_worker.text.rewrites.rewritten_alike`, or none listed), oldest first; and the
    part of the listing ``searched``, which a copy of another of our messages may hold too."""

    searched: Searched
    exact: tuple[Accepted, ...] = ()
    near: tuple[Accepted, ...] = ()


@runtime_checkable
class FindsSent(Protocol):
    """An adapter whose API can say whether it has a message it was sent, though its id never
    came back (a listing of outbound messages, such as Telefoon's ``GET /messages``).

    After an ambiguous attempt the dispatcher asks it before sending again
    (:mod:`sms_worker.dispatch.lookup`); adapters without this capability are not asked."""

    def find_sent(self, message: OutboundMessage, window: SentWindow) -> SentMatches:
        """What the provider lists, created within ``window``, that ``message`` may have become:
        same recipient and sender, its text or a rewriting of it, or a copy whose text is not
        listed. Reads only as much of the listing as the window needs; raises ProviderError if
        the API cannot tell (the question failed)."""
        ...


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """One message whose status is asked: its id at the provider, and when our request for it
    left (our clock, an aware datetime; None: not known), which tells a listing where to look."""

    provider_message_id: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ManyChecked:
    """What one :meth:`ChecksMany.check_many` learnt: the receipts it found, by provider id (a
    message asked about and not found is not there: the poller checks it alone), and the
    ``requests`` it made for them."""

    receipts: Mapping[str, DeliveryReceipt]
    requests: int


@runtime_checkable
class ChecksMany(Protocol):
    """An adapter whose API answers the statuses of many messages in one request (a listing, such
    as Telefoon's ``GET /messages``). The status poller hands it an account's due messages at once
    instead of one :meth:`Adapter.check` each; adapters without this capability are checked one
    message per request."""

    def check_many(self, queries: Sequence[StatusQuery], max_requests: int) -> ManyChecked:
        """The receipts of as many of ``queries`` as the API gives in at most ``max_requests``
        requests (at least one). Raises ProviderError if the API cannot answer (the listing
        failed); a message it does not find is left out of the answer, never guessed."""
        ...


class AdapterBase(ABC):
    """What every adapter shares: its account's name and base URL, the HTTP client, its error
    and status tables read the same way, one HTTP exchange, ``open`` (a login, else
    :meth:`verify`) and ``close``.

    ``errors`` maps each provider error code (as the API spells it: a string, or a number) to
    its :class:`~sms_worker.providers.failures.ErrorClass`; ``statuses`` maps each word the API
    has for a message's state to a :class:`~sms_worker.lifecycle.status.Delivery`. Both are class-level
    data, written as the document spells them; a subclass's tables become
    :class:`~sms_worker.providers.words.Words` as it is defined, so every lookup (:meth:`error`,
    :meth:`delivery`, the plumbing's, an adapter's own ``in``) ignores letter case and surrounding
    whitespace, polled, posted or answered to a send alike.
    """

    errors: ClassVar[Mapping[Any, ErrorClass]] = Words({})
    statuses: ClassVar[Mapping[str, Delivery]] = Words({})
    max_recipients: int = 1
    zone: tzinfo | None = None
    """The zone the provider's times without an offset are in, as its document says or the
    adapter assumes (its module docstring says which); None: its times carry their offset and one
    without is ambiguous, so it is not read. One value for every path (a status check and a
    callback alike), whatever the host's zone: :mod:`~sms_worker.providers.timestamps`."""
    sessions: Sessions[Any] | None = None
    """The login session, for APIs that have one."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for table in ("errors", "statuses"):
            declared = cls.__dict__.get(table)
            if declared is not None and not isinstance(declared, Words):
                setattr(cls, table, Words(declared))

    def __init__(self, name: str, base_url: str, client: httpx.Client, headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client = client
        """The runtime's client, shared by every adapter of the process; not the adapter's to close."""
        self.headers = dict(headers or {})
        """Sent with every :meth:`request` (the API key, where the API takes it in a header)."""

    def url(self, path: str) -> httpx.URL:
        """``path`` under the base URL, parsed once for all the requests to it (:func:`~.transport.parsed_url`)."""
        return parsed_url(self.base_url + path)

    @staticmethod
    def error_body(body: Any) -> tuple[Hashable, str] | None:
        """The provider's (code, message) in an answer's JSON body, None if it is not an error
        body (:meth:`request`, which asks under every HTTP status, so a success body must never
        match); by default :func:`~sms_worker.providers.plumbing.error_envelope`."""
        return error_envelope(body)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One exchange: ``method`` on ``path`` under the base URL with :attr:`headers`. Network
        failures and error answers raise ProviderError: by the provider's own code wherever
        :meth:`error_body` finds one, whatever the HTTP status (a ``200`` carrying an error body
        is that error), else by the HTTP status
        (:func:`~sms_worker.providers.plumbing.raise_for_error`)."""
        with transport_errors():
            response = self.client.request(method, self.url(path), headers=self.headers, **kwargs)
        raise_for_error(response, self.errors, self.error_body)
        return response

    def request_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`request`, answered with a JSON object (anything else is ambiguous: BAD_RESPONSE)."""
        return json_object(self.request(method, path, **kwargs))

    @classmethod
    def error(cls, code: Hashable, text: str) -> ProviderError:
        """``code`` as :attr:`errors` classifies it, reported as the table spells it;
        :data:`UNLISTED_CODE` if it is not there."""
        return cls.errors.get(code, UNLISTED_CODE).error(str(spelled(cls.errors, code)), text)

    @classmethod
    def delivery(cls, word: str) -> Delivery | None:
        """A status word in our vocabulary, in any case and with any surrounding whitespace; None
        for a word :attr:`statuses` does not name."""
        return cls.statuses.get(word)

    def group_key(self, message: OutboundMessage) -> Hashable:
        return message.message_id

    def open(self) -> None:
        """Log in where the API has sessions (the login proves the credentials); else
        :meth:`verify`, the account's cheapest authenticated call. Either way an account-wide
        fault (a bad key, an IP not allowed, no balance) is raised here, at worker start."""
        if self.sessions is not None:
            self.sessions.current()
        else:
            self.verify()

    @abstractmethod
    def verify(self) -> str:
        """The account's cheapest authenticated call (see :class:`Adapter`)."""

    def prepaid_balance(self, amount: float, currency: str, empty_code: Hashable) -> str:
        """``balance 12.50 EUR``, what :meth:`verify` says of a prepaid account; with nothing
        left (``amount <= 0``) it raises ``empty_code``, the API's own code for a send the balance
        cannot cover, as :attr:`errors` classifies it (account-wide: every message would meet it,
        so the account pauses, at worker start included)."""
        if amount <= 0:
            raise self.error(empty_code, f"prepaid balance is {amount:.2f} {currency}".rstrip())
        return f"balance {amount:.2f} {currency}".rstrip()

    def close(self) -> None:
        """Forget the session, if any (the APIs have no logout); the HTTP client is the caller's."""
        if self.sessions is not None:
            self.sessions.close()


class OneRecipientPerRequest(AdapterBase, ABC):
    """For APIs that take one recipient per request: every message is its own request, and
    ``send`` submits them one after another with :meth:`send_one`."""

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = []
        for message in messages:
            try:
                outcomes.append(self.send_one(message))
            except ProviderError as error:
                outcomes.append(error.failure)
        return outcomes

    @abstractmethod
    def send_one(self, message: OutboundMessage) -> Accepted:
        """Submit one message, or raise ProviderError."""
