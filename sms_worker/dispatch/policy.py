"""The retry policy: what a failed attempt leads to, for the dispatcher and the recovery sweep alike.

Transient failures are retried at most ``max_retries`` times, all within ``window`` of the first
attempt, never past validity (the Telekom SK document's "up to 5 times within 60 minutes"). A
failure that may hide an accepted message (a timeout, an unreadable answer, a worker lost during
the call) is *ambiguous* (``ErrorKind.AMBIGUOUS``): it is retried on the same account only, where
the provider may know the message, or not at all (``retry_ambiguous="never"``, status
``unknown``). A permanent failure is final at once; an account-wide one (a bad key, no balance)
is the account's fault: the attempt does not count and the message goes back to routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sms_worker.config import Settings
from sms_worker.dispatch.batch import Defer, Finish
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.status import Status

PAUSE_RECHECK = timedelta(seconds=30)
"""How long a message pinned to a paused account waits before it looks again."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """The attempt that failed: its account, its number (1 for the first), and the message's limits."""

    account: str
    number: int
    first_attempt_at: datetime
    valid_until: datetime
    pinned: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    window: timedelta = timedelta(minutes=60)
    backoff_seconds: tuple[float, ...] = (30, 120, 300, 900, 1800)
    retry_ambiguous: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.max_retries,
            timedelta(seconds=settings.retry_window_seconds),
            settings.retry_backoff_seconds,
            settings.retry_ambiguous == "same-account",
        )

    def after_failure(self, error: Failure, attempt: Attempt, now: datetime) -> Defer | Finish:
        """Where a message goes after ``attempt`` failed with ``error``."""
        described = str(error)
        ambiguous = error.kind is ErrorKind.AMBIGUOUS
        if error.kind is ErrorKind.PERMANENT and error.account_wide:
            wait = PAUSE_RECHECK if attempt.pinned else timedelta(0)
            return Defer(now + wait, f"account {attempt.account} paused ({described}); attempt not counted", Status.QUEUED, error.code, counted=False)
        if error.kind is ErrorKind.PERMANENT:
            return Finish(error.status, f"permanent failure {described}", error.code)
        if ambiguous and not self.retry_ambiguous:
            return Finish(Status.UNKNOWN, f"{described}; {attempt.account} may have the message, so it is not sent again", error.code)
        retries_used = attempt.number - 1
        if retries_used >= self.max_retries:
            return Finish(Status.UNDELIVERABLE, f"gave up after {retries_used} retries; last error {described}", error.code)
        delay = timedelta(seconds=self.backoff_seconds[min(retries_used, len(self.backoff_seconds) - 1)])
        at = min(now + delay, attempt.first_attempt_at + self.window)
        if at <= now:
            return Finish(Status.UNDELIVERABLE, f"retry window of {self.window} since the first attempt is over; last error {described}", error.code)
        if at >= attempt.valid_until:
            return Finish(Status.EXPIRED, f"validity ends before the next retry; last error {described}", error.code)
        note = f"transient failure {described}; retry {attempt.number} at {at.isoformat()}"
        if ambiguous:
            note += f" via {attempt.account} only: it may have the message, and another account would send it twice"
        return Defer(at, note, Status.RETRYING, error.code, pin=ambiguous)
