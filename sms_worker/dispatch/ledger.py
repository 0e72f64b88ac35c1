"""Writing what the stages decided: each disposition as the change of the message's lifecycle
it is (:func:`~.changes.write_of`), handed to this process's write-behind
(:class:`~sms_worker.workers.write_behind.WriteBehind`), which writes rows and events in one
transaction, then pointers in one call, or holds them while a server is away.

A message the batch found waiting is changed only while it still waits; a message the batch
claimed only while its row still names this claim (``claim_id``).
"""

from __future__ import annotations

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Batch
from sms_worker.dispatch.changes import write_of
from sms_worker.dispatch.checks import CheckSchedule
from sms_worker.runtime import Runtime
from sms_worker.workers.write_behind import WriteBehind


class Ledger:
    """The batch's dispositions, written once each. ``schedule``: how soon a message a provider
    accepted is first checked for a delivery report."""

    def __init__(self, write_behind: WriteBehind, clock: Clock, schedule: CheckSchedule) -> None:
        self._write_behind = write_behind
        self._clock = clock
        self._schedule = schedule

    @classmethod
    def of(cls, rt: Runtime) -> Ledger:
        """The ledger of ``rt``: its write-behind, its clock, its status checks' schedule
        (:class:`~.checks.CheckSchedule`: the first delay, or the overdue time of an account that
        posts receipts)."""
        return cls(rt.write_behind, rt.clock, CheckSchedule.of(rt.settings, rt.accounts))

    def write(self, batch: Batch) -> None:
        """Write the dispositions of ``batch`` not written yet; held if a server is away."""
        items = batch.unwritten()
        if not items:
            return
        now = self._clock.now()
        writes = [write for item in items if (write := write_of(item, now, self._schedule)) is not None]
        for item in items:
            item.written = True
        self._write_behind.write(writes)
