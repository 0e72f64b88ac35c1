"""Validity window: a message past its validity, or past its retry window, is not sent; one not
due yet waits for its time. A message unsure since an ambiguous attempt (:mod:`sms_worker.lifecycle.ambiguity`)
ends ``unknown`` instead of ``expired`` or ``undeliverable``: it may have been delivered
(:func:`~sms_worker.lifecycle.ambiguity.runs_out`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Batch, Defer, Finish
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.lifecycle.ambiguity import runs_out, why_unknown
from sms_worker.lifecycle.changes import NEVER_SENT_EXPIRY, UNSURE_EXPIRY, VALIDITY_EXPIRED
from sms_worker.lifecycle.status import Status
from sms_worker.runtime import Runtime

RETRY_WINDOW_OVER: Final = "RETRY_WINDOW_OVER"
"""The error code of a retrying message picked up after its retry window ended."""
SCHEDULE_TOLERANCE = timedelta(seconds=0.1)
"""A message due this close to now is sent now: the promoter moves pointers a little early."""


class ValidityWindow(Stage):
    """``retry_window``: how long after its first attempt a message may still be retried."""

    def __init__(self, clock: Clock, retry_window: timedelta) -> None:
        self._clock = clock
        self._retry_window = retry_window

    @classmethod
    def of(cls, rt: Runtime) -> ValidityWindow:
        """The stage of a worker: its clock and the deployment's retry window."""
        return cls(rt.clock, timedelta(seconds=rt.settings.retry_window_seconds))

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._clock.now()
        for item in batch.in_play():
            row = item.row
            unsure = row.unsure_since is not None
            if row.valid_until <= now:
                batch.settle(item, Finish(runs_out(Status.EXPIRED, unsure=unsure), UNSURE_EXPIRY if unsure else NEVER_SENT_EXPIRY, VALIDITY_EXPIRED))
            elif row.status is Status.RETRYING and row.first_attempt_at is not None and now > row.first_attempt_at + self._retry_window:
                reason = f"retry window of {self._retry_window} since the first attempt is over{why_unknown(row.unsure_since)}"
                batch.settle(item, Finish(runs_out(Status.UNDELIVERABLE, unsure=unsure), reason, RETRY_WINDOW_OVER))
            elif row.send_after > now + SCHEDULE_TOLERANCE:
                batch.settle(item, Defer(row.send_after, "not due yet"))
