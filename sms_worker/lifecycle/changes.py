"""Every change a message can undergo, as a value.

Who decides which change a message undergoes stays where it was: the producer (:class:`Created`),
the dispatch stages (:class:`Claimed`, :class:`Adopted`, :class:`CallStarted`, and through the
ledger the outcomes), the reclaimer (:class:`TakenBack`, :class:`Failed`), the sweep
(:class:`Expired`, :class:`Requeued`), the status poller and the callbacks (:class:`Reported`).
How the row changes is said once, in :mod:`.write` (and :mod:`.calls` for :class:`CallStarted`):
each change is checked against the table of allowed transitions (:mod:`.transitions`) and
written behind its fence (:mod:`.fence`), its history with it, whole or not at all.

The *dispatch changes* (:data:`DispatchChange`) are those of a message a dispatch batch held or
found waiting (decided by the stages, turned into changes by the dispatch ledger) or the
reclaimer took back from a lost worker; the write-behind buffer (:mod:`sms_worker.workers.write_behind`)
writes them, and holds them while the database is away. Each names its message (``id``), the claim the writer holds it by
(``claim``; None: the batch found it waiting and did not claim it), when it was decided (``at``),
why (``reason``, its line in the history) and, after a call, the call it answers (``call``).
Times are aware (UTC).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final

from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.priority import Priority

VALIDITY_EXPIRED: Final = "VALIDITY_EXPIRED"
"""The error code of a message whose validity ended before it could be sent (again)."""
NEVER_SENT_EXPIRY: Final = "validity ended before it could be sent; never sent"
UNSURE_EXPIRY: Final = "validity ended before it could be sent again; an earlier attempt may have reached the provider, so the outcome is unknown"


@dataclass(frozen=True, slots=True)
class Note:
    """One line of a message's history (``sms_message_event``): its status after the event, why,
    and the error code (a failure) or the provider's word (a report) that caused it."""

    at: datetime
    status: Status
    reason: str
    code: str | None = None
    provider_status: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """The provider call an outcome answers."""

    attempt: int
    """Its number, as counted when it was recorded as started (1 for the first)."""
    started_at: datetime
    """When it was recorded as started: the row's ``last_attempt_at`` since."""
    note: str | None
    """Its line in the history (``attempt 2 via telekom-sk``), dated ``started_at`` and written
    with the outcome; None: none is written (the call was not made after all, or the reclaimer
    answers for a worker it lost)."""


@dataclass(frozen=True, slots=True)
class Uncounted:
    """An attempt that does not count: the row's ``attempts`` and ``first_attempt_at`` go back to
    what they were before it."""

    attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Created:
    """A message the producer accepted: a new row, ``scheduled`` (``send_after`` is later than
    its creation) or ``queued``, and its first line of history. ``requested_account`` is the
    account the producer named (None: routing chooses), and the message is pinned to it
    (:attr:`pinned_account`); ``account`` is the one to try first."""

    id: uuid.UUID
    recipient: str
    sender: str | None
    text: str
    encoding: str
    segments: int
    priority: Priority
    account: str
    requested_account: str | None
    status: Status
    unicode: bool | None
    flash: bool
    on_ambiguous: str | None
    send_after: datetime
    valid_until: datetime
    idempotency_key: str | None
    campaign_id: str | None
    created_at: datetime

    @property
    def attempts(self) -> int:
        return 0

    @property
    def updated_at(self) -> datetime:
        return self.created_at

    @property
    def pinned_account(self) -> str | None:
        """The only account that may carry the message: the one the producer named, if any."""
        return self.requested_account


@dataclass(frozen=True, slots=True)
class Claimed:
    """A batch claims the messages of ``accounts`` (each with the account that carries it) that
    still wait, are valid at ``at`` and due by ``due_by``: their rows name the claim and the
    worker process (``dispatcher``) until it is written back."""

    claim: uuid.UUID
    dispatcher: str
    accounts: dict[uuid.UUID, str]
    at: datetime
    due_by: datetime


class LostAttempt(Enum):
    """What a :class:`CallStarted` does to an earlier ambiguous attempt its provider was asked
    about (:mod:`~sms_worker.dispatch.lookup`), so that a worker lost during this call leaves the
    window in question right."""

    KEPT = "kept"
    """Not asked: the row keeps ``unsure_since``."""
    RESENT = "resent"
    """Asked, and sent again: its listing had no copy (it cannot show a lost request it handles
    after the attempt's window: a provider with a queue may), or a near match its policy
    (resend) sends again over. Unsure since this attempt, and a possible duplicate from now on.
    A call not made after all puts both back (:class:`CallNotMade`): only a call that may go out
    makes a second copy."""


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The calls of one group may start: each row of ``ids`` still held by one of ``claims``
    becomes ``calling``, its attempt counted (``first_attempt_at`` if it is the first,
    ``last_attempt_at`` = ``at``), and an earlier lost attempt is done with as ``lost`` says."""

    ids: tuple[uuid.UUID, ...]
    claims: tuple[uuid.UUID, ...]
    at: datetime
    lost: LostAttempt = LostAttempt.KEPT


@dataclass(frozen=True, slots=True)
class Attempted:
    """Only messages whose last attempt started within ``[start, end]`` (aware, our clock)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Adopted:
    """Message ``id``, held by ``claim``, adopts the copy ``provider_message_id`` that
    ``account`` lists, made in a window that messages attempted within ``attempted`` may have
    made; ``recipient`` and ``text`` are the message's. It is the copy's holder from then on,
    unless another message of the account may be (:func:`~sms_worker.lifecycle.write.adopt`)."""

    id: uuid.UUID
    claim: uuid.UUID
    account: str
    provider_message_id: str
    recipient: str
    text: str
    attempted: Attempted


@dataclass(frozen=True, slots=True, kw_only=True)
class _LedgerChange:
    id: uuid.UUID
    claim: uuid.UUID | None
    """The claim the writer holds the row by; None: it found the row waiting and did not claim it."""
    at: datetime
    reason: str
    call: Call | None = None
    """The call this outcome answers; None: no call was made."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(_LedgerChange):
    """A provider has the message: it accepted a call, or a copy found after an ambiguous attempt
    is adopted. ``submitted``, or the final status its first word already is (then ``code`` is
    its report's failure code, if a failure); checked first at ``next_check_at``.

    Written also as a *late answer* (:mod:`.write`), after the reclaimer took the claim back,
    while nothing newer has happened to the message."""

    status: Status
    account: str
    provider_message_id: str
    provider_status: str
    delivery: Delivery | None
    next_check_at: datetime
    code: str | None = None
    possible_duplicate: bool = False
    """Sent again after an ambiguous attempt the provider could not be asked about, or over a
    near match it listed: the recipient may have it twice."""


class Then(Enum):
    """What a failed attempt leads to, as the retry policy decided (:class:`Failed`)."""

    RETRY = "retry"
    """``retrying``: tried again at ``until``, the attempt counted."""
    UNCOUNTED = "uncounted"
    """``queued``, the attempt not counted (:class:`Uncounted`): the account failed, not the
    message (an account-wide failure: the account pauses)."""
    FINAL = "final"
    """A final status: a permanent failure, or retries, retry window or validity run out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(_LedgerChange):
    """A call failed (or was lost with its worker: the reclaimer), and ``then`` says what follows."""

    then: Then
    status: Status
    code: str | None
    until: datetime | None = None
    """When it is due again (``retry``, ``uncounted``); None for ``final``."""
    uncounted: Uncounted | None = None
    """Set for ``uncounted``: the attempt does not count."""
    unsure_since: datetime | None = None
    """Set: the message is unsure since then (an attempt that may have reached the provider
    began, :mod:`~sms_worker.lifecycle.ambiguity`); None leaves the row's."""
    pinned_account: str | None = None
    """The account the message is pinned to from now on (the ``pinned_account`` column: no other
    account may carry it), because it may have the message (an ambiguous attempt); None:
    unchanged. The account the producer named (``requested_account``) is never changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallNotMade(_LedgerChange):
    """A call recorded as started and then not made after all (the send window stayed full,
    Redis was away, it would have left too late): the attempt does not count, and the row is as
    it was before it (``queued``, or ``retrying`` after earlier attempts)."""

    status: Status
    until: datetime
    uncounted: Uncounted
    unsure_since: datetime | None = None
    """Set: put back (the call's statement had set it, over a near match); None leaves the row's."""
    possible_duplicate: bool | None = None
    """Set: put back likewise; None leaves the row's."""
    pinned_account: str | None = None
    """As :attr:`Failed.pinned_account`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GivenBack(_LedgerChange):
    """A claim given back with no call made: unused (no account, no token, a batch stopped), a
    question to the provider that failed, a call record that failed (applied or not: its answer
    may be what was lost, so the row may be ``calling``), or a worker lost before its call (the
    reclaimer). The message waits again, due at ``until``, in ``status`` (the one it had before
    the claim, or the one the decision names)."""

    status: Status
    until: datetime
    code: str | None = None
    noted: bool = True
    """Whether the history says so; a claim given back unused leaves no trace."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TakenBack(GivenBack):
    """A claim the reclaimer takes back from a worker it takes for dead, read while the row was
    ``claimed`` (no call started): written only if the row is ``claimed`` still. A worker that
    was not dead after all may have started its call since; the row is then ``calling``, this
    change writes nothing, and the reclaimer's next look decides the call as an ambiguous attempt
    (``WORKER_LOST``), so the message stays unsure of it rather than waiting as if never sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended(_LedgerChange):
    """A final status decided without a call: validity or retry window over, no account may
    carry it, or a near match its policy gives up on."""

    status: Status
    code: str | None


DispatchChange = Accepted | Failed | CallNotMade | GivenBack | Ended
"""A change of a message a dispatch batch held or found waiting, or the reclaimer took back,
written by the write-behind buffer (:func:`~sms_worker.lifecycle.write.apply`)."""


@dataclass(frozen=True, slots=True)
class Reported:
    """What the provider's receipts (one or several, polled or posted back) make of a submitted
    message: its ``status`` after them (the same if none moved it), and each column they change
    (None: unchanged), the next check (None: no more, it is final) and their ``notes``."""

    id: uuid.UUID
    status: Status
    next_check_at: datetime | None
    notes: tuple[Note, ...]
    delivery: Delivery | None = None
    provider_status: str | None = None
    delivered_at: datetime | None = None
    code: str | None = None
    error_text: str | None = None


@dataclass(frozen=True, slots=True)
class Expired:
    """The sweep's expiry: messages still waiting once their validity ended at ``at`` (those of
    ``ids``; None: every one) end ``expired``, or ``unknown`` when unsure
    (:func:`~sms_worker.lifecycle.ambiguity.runs_out`); an earlier error code is kept: it says why."""

    at: datetime
    ids: tuple[uuid.UUID, ...] | None = None


@dataclass(frozen=True, slots=True)
class Requeued:
    """Waiting messages whose pointer was lost and is queued again: ``updated_at`` = ``at``, so
    the sweep does not queue them again until they are stale once more."""

    ids: tuple[uuid.UUID, ...]
    at: datetime


Change = Created | Claimed | CallStarted | Adopted | DispatchChange | Reported | Expired | Requeued
"""Every change a message can undergo."""
