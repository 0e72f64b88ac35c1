"""Validity window: a message past its validity, or past its retry window, is not sent; one not
due yet waits for its time."""

from __future__ import annotations

from datetime import timedelta

from sms_worker.dispatch.batch import Batch, Defer, Finish
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.sql import NEVER_SENT_EXPIRY
from sms_worker.runtime import Runtime
from sms_worker.status import Status

SCHEDULE_TOLERANCE = timedelta(seconds=0.1)
"""A message due this close to now is sent now: the promoter moves pointers a little early."""


class ValidityWindow(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._clock = rt.clock
        self._retry_window = timedelta(seconds=rt.settings.retry_window_seconds)

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._clock.now()
        for item in batch.in_play():
            row = item.row
            if row.valid_until <= now:
                batch.settle(item, Finish(Status.EXPIRED, NEVER_SENT_EXPIRY, "VALIDITY_EXPIRED"))
            elif row.status is Status.RETRYING and row.first_attempt_at is not None and now > row.first_attempt_at + self._retry_window:
                reason = f"retry window of {self._retry_window} since the first attempt is over"
                batch.settle(item, Finish(Status.UNDELIVERABLE, reason, "RETRY_WINDOW_OVER"))
            elif row.send_after > now + SCHEDULE_TOLERANCE:
                batch.settle(item, Defer(row.send_after, "not due yet"))
