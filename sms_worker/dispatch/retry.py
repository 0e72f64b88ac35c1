"""The retry policy: at most N retries, all within a window of the first attempt, never past validity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sms_worker.config import Settings
from sms_worker.status import Status


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    status: Status
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    window: timedelta = timedelta(minutes=60)
    backoff_seconds: tuple[float, ...] = (30, 120, 300, 900, 1800)

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        return cls(settings.max_retries, timedelta(seconds=settings.retry_window_seconds), settings.retry_backoff_seconds)

    def after_transient_failure(self, *, attempts: int, first_attempt_at: datetime, now: datetime, valid_until: datetime) -> RetryAt | GiveUp:
        """``attempts`` counts the one that just failed; retries are the attempts after the first."""
        retries_used = attempts - 1
        if retries_used >= self.max_retries:
            return GiveUp(Status.UNDELIVERABLE, f"gave up after {retries_used} retries")
        delay = self.backoff_seconds[min(retries_used, len(self.backoff_seconds) - 1)]
        at = min(now + timedelta(seconds=delay), first_attempt_at + self.window)
        if at <= now:
            return GiveUp(Status.UNDELIVERABLE, f"retry window of {self.window} since the first attempt is over")
        if at >= valid_until:
            return GiveUp(Status.EXPIRED, "validity ends before the next retry")
        return RetryAt(at)
