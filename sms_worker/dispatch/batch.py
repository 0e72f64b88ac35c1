"""The messages of one dispatch batch, and what each stage decided about each one.

A message in play is an :class:`Item`. A stage gives an item a disposition, or leaves it in play
for the next stage:

- :class:`Defer`: not now; its pointer comes back at ``until``. A deferral may also move the row
  (a failed attempt becomes ``retrying``); a claim the item held is given back.
- :class:`Finish`: it leaves the pipeline with a status: a final one, or ``submitted`` once a
  provider accepted it (receipts take it from there).
- :class:`Skip`: the row is not ours to decide (another worker holds it, or it moved on); nothing
  is written.

The driver (:mod:`.pipeline`) writes finished messages in one transaction and deferrals in one
call to the due set (:mod:`.ledger`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.ambiguity import OnAmbiguous
from sms_worker.lifecycle.status import Status
from sms_worker.priority import Priority
from sms_worker.providers.base import Accepted, OutboundMessage
from sms_worker.providers.failures import Failure


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: str
    status: Status | None = None
    """The row's new status; None leaves a waiting row as it is and returns a held one to waiting."""
    code: str | None = None
    counted: bool = True
    """False: the attempt just started does not count (the account failed, not the message)."""
    unsure_since: datetime | None = None
    """Set: the message is unsure since then (an attempt that may have reached the provider
    began), and from now on only the account just tried may carry it. None leaves the row's."""
    possible_duplicate: bool | None = None
    """Set: the row's flag becomes this (a call not made puts back what its statement set);
    None leaves it."""


@dataclass(frozen=True, slots=True)
class Finish:
    status: Status
    reason: str
    code: str | None = None
    accepted: Accepted | None = None
    possible_duplicate: bool = False
    """Accepted by a resend after an ambiguous attempt its provider could not be asked about."""


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


Disposition = Defer | Finish | Skip


class NotSent(SmsWorkerError):
    """The call was not made after all (the send window stayed full, Redis was away): the
    message comes back at ``until`` and the attempt does not count."""

    def __init__(self, reason: str, until: datetime) -> None:
        super().__init__(reason)
        self.reason, self.until = reason, until


@dataclass(frozen=True, slots=True)
class Found:
    """Asked after an ambiguous attempt, the provider had the message: it is adopted, not resent."""

    accepted: Accepted


@dataclass(frozen=True, slots=True)
class Absent:
    """Asked after an ambiguous attempt, the provider had not listed the message: it is sent
    again, a possible duplicate all the same (a provider may take the lost request after the
    part of its listing searched, from a queue)."""


@dataclass(frozen=True, slots=True)
class NearMatch:
    """Asked after an ambiguous attempt, the provider lists a copy to the recipient that may be
    ours though it is not the very message (its text or sender differs only as a provider
    rewrites text, or its text is not listed), so the provider may have the message. The
    message's policy decides (resend, flagged as a possible duplicate; or give-up: this is its
    outcome, and it ends unknown)."""

    listed: Accepted


@dataclass(frozen=True, slots=True)
class Unanswered:
    """The question "do you have this message?" failed: nothing was sent, the message stays
    unsure and is asked about again later (an account-wide fault pauses the account)."""

    failure: Failure


Answer = Found | Absent | NearMatch | Unanswered
"""What asking the provider after an ambiguous attempt said (:mod:`.lookup`)."""
Outcome = Accepted | Found | Failure | NotSent | NearMatch | Unanswered


@dataclass(frozen=True, slots=True)
class ReadRow:
    """The row of a message waiting to be sent, as the batch read it."""

    status: Status
    recipient: str
    sender: str | None
    text: str
    """Read for routing: an account whose wire format cannot carry it is passed over."""
    segments: int
    attempts: int
    send_after: datetime
    valid_until: datetime
    first_attempt_at: datetime | None
    pinned_account: str | None
    unsure_since: datetime | None
    on_ambiguous: OnAmbiguous | None
    possible_duplicate: bool

    @classmethod
    def of(cls, values: Sequence[Any], status: Status) -> ReadRow:
        """From the values of the :data:`READ_COLUMNS`, in their order, in ``status``. (Taken
        by position: a row's values by name cost as much as the rest of reading the batch.)"""
        return cls(status, *values)


READ_COLUMNS = tuple(f.name for f in fields(ReadRow) if f.name != "status")
"""The message columns a :class:`ReadRow` holds besides its status, named as in the table."""


class NotDecided(SmsWorkerError):
    """A stage read what an earlier stage decides (the account, the claimed message, the call)
    before that stage decided it for the item: the stages are out of order, or one let through
    an item it did not decide. A bug, never a state of the message."""


@dataclass(frozen=True, slots=True)
class Routed:
    """What the route stage decided: the account that carries this attempt, and whether the
    message is the probe of that account's half-open breaker."""

    account: str
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Started:
    """What the submit stage recorded before the call (the row turned ``calling``): the
    attempt's number (1 for the first), when the call was recorded as started (its event is
    written with the outcome), and when the message's first attempt was."""

    attempt: int
    at: datetime
    first_attempt_at: datetime


@dataclass(eq=False, slots=True)
class Item:
    """One message in play. Stages fill in what they decide or take, in pipeline order; a stage
    reads what an earlier one decided through the checked properties (:attr:`account`,
    :attr:`message`, :attr:`call`), which raise :class:`NotDecided` if it was not."""

    id: uuid.UUID
    priority: Priority
    row: ReadRow
    routed: Routed | None = None
    """Route: the account and whether it probes; None until route chose one."""
    cost: int = 0
    """Pace: rate-limit tokens taken for it."""
    claim_id: uuid.UUID | None = None
    """Claim: the name of the claim by which this worker may hold the row, set before the
    claiming statement (a claim in doubt is given back by it); None: it holds no claim."""
    outbound: OutboundMessage | None = None
    """Claim: what the provider call needs, read in the claiming statement."""
    started: Started | None = None
    """Submit: the call recorded as started; None: no call was made."""
    request: int = 0
    """Submit: which request of the batch carried it (several messages may share one), or which
    question asked about it."""
    asked_first: Absent | NearMatch | None = None
    """Submit: what the provider said when asked first, after an ambiguous attempt, whether it
    had the message, when the message was then sent again (it had not; or a near match, which
    the message's policy resends); None: it was not asked."""
    outcome: Outcome | None = None
    disposition: Disposition | None = None
    written: bool = False

    @property
    def account(self) -> str:
        """The account route chose; raises :class:`NotDecided` before."""
        if self.routed is None:
            raise NotDecided(f"message {self.id}: no account chosen (the route stage decides it)")
        return self.routed.account

    @property
    def probe(self) -> bool:
        """Route chose it as the probe of its account's half-open breaker."""
        return self.routed is not None and self.routed.probe

    @property
    def message(self) -> OutboundMessage:
        """The claimed message as the provider call needs it; raises :class:`NotDecided` before
        the claim stage read it."""
        if self.outbound is None:
            raise NotDecided(f"message {self.id}: not claimed (the claim stage reads what the call needs)")
        return self.outbound

    @property
    def claim(self) -> uuid.UUID:
        """The claim by which this worker holds the row; raises :class:`NotDecided` if it holds none."""
        if self.claim_id is None:
            raise NotDecided(f"message {self.id}: holds no claim (the claim stage takes it)")
        return self.claim_id

    @property
    def call(self) -> Started:
        """The call recorded as started; raises :class:`NotDecided` if none was (see :attr:`called`)."""
        if self.started is None:
            raise NotDecided(f"message {self.id}: no call recorded as started (the submit stage records it)")
        return self.started

    @property
    def called(self) -> bool:
        return self.started is not None

    @property
    def pinned(self) -> bool:
        return self.row.pinned_account is not None


@dataclass(eq=False)
class Batch:
    """Items and what the pipeline decided; stages see :meth:`in_play`."""

    items: list[Item] = field(default_factory=list)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def in_play(self) -> list[Item]:
        return [item for item in self.items if item.disposition is None]

    def extend(self, items: Iterable[Item]) -> None:
        self.items.extend(items)

    def settle(self, item: Item, disposition: Disposition) -> None:
        if item.disposition is None:
            item.disposition = disposition

    def unwritten(self) -> list[Item]:
        return [item for item in self.items if item.disposition is not None and not item.written]
