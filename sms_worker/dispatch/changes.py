"""Which change of the message's lifecycle each disposition is.

The stages decide (:mod:`.batch`); this names the change (:mod:`sms_worker.lifecycle.changes`)
with everything it writes made explicit: the status a claim given back returns to, an attempt
that does not count, the account an unsure message is pinned to. The ledger (:mod:`.ledger`)
hands it, with the pointer, to the write-behind (:mod:`sms_worker.workers.write_behind`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sms_worker.dispatch.batch import Absent, Defer, Finish, Item, NearMatch, NotSent, Skip
from sms_worker.dispatch.checks import CheckSchedule
from sms_worker.lifecycle.changes import Accepted, Call, CallNotMade, Ended, Failed, GivenBack, Then, Uncounted
from sms_worker.lifecycle.status import Status
from sms_worker.queues.pointers import Due, Pointer
from sms_worker.workers.write_behind import Write


def write_of(item: Item, now: datetime, schedule: CheckSchedule) -> Write | None:
    """What ``item``'s disposition writes (None: nothing, a skip). ``schedule``: how soon a
    message a provider accepted is first checked for a delivery report."""
    disposition = item.disposition
    if disposition is None or isinstance(disposition, Skip):
        return None
    if isinstance(disposition, Finish):
        return Write(finished(item, disposition, now, schedule), None)
    pointer = Due(Pointer(item.priority, item.id), disposition.until)
    if item.claim_id is None:
        return Write(None, pointer)
    return Write(deferred(item, disposition, now), pointer)


def finished(item: Item, finish: Finish, now: datetime, schedule: CheckSchedule) -> Accepted | Failed | Ended:
    """A message that leaves the pipeline with a status: accepted by its provider, failed for
    good after its call, or ended before any."""
    call = _call(item)
    accepted = finish.accepted
    if accepted is not None:
        return Accepted(
            id=item.id,
            claim=item.claim_id,
            at=now,
            reason=finish.reason,
            call=call,
            status=finish.status,
            account=item.account,
            provider_message_id=accepted.provider_message_id,
            provider_status=accepted.provider_status,
            delivery=accepted.delivery,
            next_check_at=now + schedule.first(item.account),
            code=finish.code,
            possible_duplicate=finish.possible_duplicate,
        )
    if call is not None:
        return failed(finish, item.id, item.claim_id, call, now, Pin(item.account, item.pinned), item.row.first_attempt_at)
    return Ended(id=item.id, claim=item.claim_id, at=now, reason=finish.reason, status=finish.status, code=finish.code)


def deferred(item: Item, defer: Defer, now: datetime) -> Failed | CallNotMade | GivenBack:
    """A message this batch held that comes back later: its claim given back unused (to the
    status it had, unless the decision names one), a call that was not made, or a failed call
    to be tried again (counted, or not: the account's fault)."""
    call = _call(item)
    if call is None:
        return GivenBack(
            id=item.id,
            claim=item.claim_id,
            at=now,
            reason=defer.reason,
            status=defer.status or item.row.status,
            until=defer.until,
            code=defer.code,
            noted=defer.status is not None,
        )
    if not defer.counted and isinstance(item.outcome, NotSent):
        uncounted = Uncounted(call.attempt - 1, item.row.first_attempt_at)
        return CallNotMade(
            id=item.id,
            claim=item.claim_id,
            at=now,
            reason=defer.reason,
            call=call,
            status=Status.RETRYING if uncounted.attempts else Status.QUEUED,
            until=defer.until,
            uncounted=uncounted,
            unsure_since=defer.unsure_since,
            possible_duplicate=defer.possible_duplicate,
            pinned_account=Pin(item.account, item.pinned).after(defer),
        )
    return failed(defer, item.id, item.claim_id, call, now, Pin(item.account, item.pinned), item.row.first_attempt_at)


@dataclass(frozen=True, slots=True)
class Pin:
    """The account a call went to, and whether the message was pinned to one already (the
    producer named it, or an earlier ambiguous attempt pinned it there)."""

    account: str
    pinned: bool

    def after(self, defer: Defer) -> str | None:
        """The account the message is pinned to from now on: the one just tried, once the
        deferral makes it unsure (that account may have it: :mod:`sms_worker.lifecycle.ambiguity`),
        unless it is pinned already (to that very account); None: unchanged."""
        return self.account if defer.unsure_since is not None and not self.pinned else None


def failed(
    decided: Defer | Finish,
    message_id: uuid.UUID,
    claim: uuid.UUID | None,
    call: Call,
    at: datetime,
    pin: Pin,
    first_attempt_before: datetime | None,
) -> Failed:
    """Message ``message_id``'s call (``call``, under ``claim``) failed, and the retry policy
    decided ``decided``: a final status, or another try at its time, counted or not (the
    account's fault: the attempt is taken back, and the first attempt is
    ``first_attempt_before`` again). For the decide stage and the reclaimer alike."""
    if isinstance(decided, Finish):
        return Failed(id=message_id, claim=claim, at=at, reason=decided.reason, call=call, then=Then.FINAL, status=decided.status, code=decided.code)
    uncounted = None if decided.counted else Uncounted(call.attempt - 1, first_attempt_before)
    return Failed(
        id=message_id,
        claim=claim,
        at=at,
        reason=decided.reason,
        call=call,
        then=Then.RETRY if uncounted is None else Then.UNCOUNTED,
        status=decided.status or Status.RETRYING,
        code=decided.code,
        until=decided.until,
        uncounted=uncounted,
        unsure_since=decided.unsure_since,
        pinned_account=pin.after(decided),
    )


def _call(item: Item) -> Call | None:
    """The call ``item``'s outcome answers (None: no call was made); its line in the history
    says which attempt went where, and what asking the provider first said."""
    if item.started is None:
        return None
    note = None if isinstance(item.outcome, NotSent) else f"attempt {item.started.attempt} via {item.account}{_asked_first(item)}"
    return Call(item.started.attempt, item.started.at, note)


def _asked_first(item: Item) -> str:
    if isinstance(item.asked_first, Absent):
        return f" (asked first: {item.account} had not listed the message from the ambiguous attempt, so it is sent again: a possible duplicate)"
    if isinstance(item.asked_first, NearMatch):
        return (
            f" (asked first: {item.account} lists {item.asked_first.listed.provider_message_id}, a near match that may be this message, its "
            "text or sender rewritten by the provider or its text not listed; sent again by its policy, resend: a possible duplicate)"
        )
    return ""
