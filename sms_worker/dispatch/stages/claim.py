"""Claim: one atomic statement makes the batch's messages this worker's, or leaves them alone.

``UPDATE ... WHERE id IN (...) AND status IN (waiting) ... RETURNING``
(:func:`~sms_worker.lifecycle.write.claim`): a pointer two workers both
popped (or the sweep pushed twice) is claimed once, and only the claimed rows are sent (Notify's
check-then-act race, closed). The row then names the claim (``claim_id``) and this process
(``dispatcher``, whose lease it keeps: :mod:`~sms_worker.workers.lease`); what the provider call
needs comes back in the same statement, and the transaction is closed before any HTTP. Claims
not called after all are given back in :meth:`Claim.after` (the ledger returns their rows to
waiting).

**A claim in doubt is given back too.** The database may commit the claim and its answer never
arrive (the server crashed, the network was cut at that instant). Each item therefore carries
the claim's id before the statement goes out: when it fails, the pipeline defers the items and
the ledger gives back, fenced by that id, whatever rows the claim did take, and schedules the
pointers of those it did not. Before, the items were deferred as never claimed, the write found
the rows ``claimed`` and left them so, and a live worker, whose lease the reclaimer rightly
respects, held them for ever (the chaos outage run: 7 messages never sent).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import datetime

from sms_worker.dispatch.batch import Batch, Defer, Skip
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.stages.validity import SCHEDULE_TOLERANCE
from sms_worker.lifecycle.changes import Claimed
from sms_worker.lifecycle.write import ClaimedRow, claim
from sms_worker.priority import Priority
from sms_worker.providers.base import OutboundMessage
from sms_worker.runtime import Runtime


class Claim(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def process(self, batch: Batch, downstream: Downstream) -> None:
        items = batch.in_play()
        rt = self._rt
        now = rt.clock.now()
        rt.lease.ensure()
        claimed = Claimed(uuid.uuid4(), rt.lease.id, {item.id: item.account for item in items}, now, now + SCHEDULE_TOLERANCE)
        for item in items:
            item.claim_id = claimed.claim
        with rt.engine.begin() as conn:
            rows = {row.id: row for row in claim(conn, claimed)}
        for item in items:
            row = rows.get(item.id)
            if row is None:
                item.claim_id = None
                batch.settle(item, Skip("another worker holds it, or it is no longer waiting"))
            else:
                item.outbound = _outbound(row, item.priority, now)
                item.row = replace(item.row, attempts=row.attempts, first_attempt_at=row.first_attempt_at)

    def after(self, batch: Batch) -> None:
        now = self._rt.clock.now()
        for item in batch.in_play():
            if item.claim_id is not None:
                batch.settle(item, Defer(now, "claim given back unused"))


def _outbound(row: ClaimedRow, priority: Priority, now: datetime) -> OutboundMessage:
    """The claimed row as an adapter needs it; the priority is the one its pointer carried."""
    remaining = max(1, min(1440, math.ceil((row.valid_until - now).total_seconds() / 60)))
    return OutboundMessage(
        message_id=row.id,
        recipient=row.recipient,
        text=row.text,
        sender=row.sender,
        priority=priority,
        validity_minutes=remaining,
        unicode=row.unicode,
        flash=row.flash,
    )
