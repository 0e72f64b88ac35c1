"""What a disposition writes: the row's new values, the history's events, the pointer.

The stages decide (:mod:`.batch`); this says what each decision means for the row, and the
ledger (:mod:`.ledger`) writes it, fenced by the claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sms_worker.dispatch.batch import Absent, Finish, Item, NearMatch, NotSent, Skip
from sms_worker.dispatch.sql import event
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.queues.pointers import Due, Pointer

WORKER_LOST: Final = "WORKER_LOST"
"""The error code of an attempt whose worker died during the call (an ambiguous attempt)."""


@dataclass(slots=True)
class Change:
    """One message's write: the row (if it changes), its events, its pointer."""

    id: uuid.UUID
    claim: uuid.UUID | None
    attempt: int
    values: dict[str, Any]
    event: dict[str, Any] | None
    pointer: Due | None
    accepted: bool = False
    started: dict[str, Any] | None = None
    """The event of the call this outcome answers, dated when it was recorded as started."""


def change_of(item: Item, now: datetime, first_check: timedelta) -> Change | None:
    """What ``item``'s disposition writes (None: nothing, a skip). ``first_check``: how soon a
    message a provider accepted is first checked for a delivery report."""
    change = _values_of(item, now, first_check)
    if change is not None and item.called_at is not None and not isinstance(item.outcome, NotSent):
        change.started = event(item.id, item.called_at, Status.CALLING, f"attempt {item.attempt} via {item.account}{_asked(item)}")
    return change


def _asked(item: Item) -> str:
    if isinstance(item.asked, Absent):
        return f" (asked first: {item.account} had not the message from the ambiguous attempt, so it is sent again)"
    if isinstance(item.asked, NearMatch):
        return (
            f" (asked first: {item.account} lists {item.asked.listed.provider_message_id}, a near match that may be this message, its "
            "text or sender rewritten by the provider or its text not listed; sent again by its policy, resend: a possible duplicate)"
        )
    return ""


def _values_of(item: Item, now: datetime, first_check: timedelta) -> Change | None:
    disposition = item.disposition
    if isinstance(disposition, Skip) or disposition is None:
        return None
    released = {"claim_id": None, "dispatcher": None} if item.claim_id is not None else {}
    if isinstance(disposition, Finish):
        values: dict[str, Any] = {"status": disposition.status.value, "updated_at": now, **released}
        accepted = disposition.accepted
        if accepted is not None:
            values.update(
                account=item.account,
                provider_message_id=accepted.provider_message_id,
                provider_status=accepted.provider_status,
                delivery=accepted.delivery.value if accepted.delivery else None,
                next_check_at=now + first_check,
                error_code=disposition.code,
                error_text=disposition.reason if disposition.code is not None else None,
            )
            if accepted.delivery is Delivery.DELIVERED:
                values["delivered_at"] = now
            if disposition.possible_duplicate:
                values["possible_duplicate"] = True
        elif disposition.code is not None:
            values.update(error_code=disposition.code, error_text=disposition.reason)
        note = event(
            item.id,
            now,
            disposition.status,
            disposition.reason,
            code=disposition.code,
            provider_status=accepted.provider_status if accepted else None,
        )
        return Change(item.id, item.claim_id, item.attempt, values, note, None, accepted is not None)
    pointer = Due(Pointer(item.priority, item.id), disposition.until)
    if item.claim_id is None and disposition.status is None:
        return Change(item.id, None, 0, {}, None, pointer)
    values = {"updated_at": now, "send_after": disposition.until, **released}
    attempts = item.attempt if disposition.counted else item.attempt - 1
    status = disposition.status or (item.row.status if not item.called else (Status.RETRYING if attempts else Status.QUEUED))
    values["status"] = status.value
    if item.called and not disposition.counted:
        values.update(attempts=attempts, first_attempt_at=item.row.first_attempt_at)
    if disposition.unsure_since is not None:
        values["unsure_since"] = disposition.unsure_since
        if not item.pinned:
            values["requested_account"] = item.account
    if disposition.possible_duplicate is not None:
        values["possible_duplicate"] = disposition.possible_duplicate
    if disposition.code is not None:
        values.update(error_code=disposition.code, error_text=disposition.reason)
    history = event(item.id, now, status, disposition.reason, code=disposition.code) if item.called or disposition.status else None
    return Change(item.id, item.claim_id, item.attempt, values, history, pointer)
