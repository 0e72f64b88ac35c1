"""When a submitted message is checked for its delivery receipt, and how many status checks an
account may make: what keeps the status poller from swamping a provider at full send rate.

- :class:`CheckSchedule`: a message is checked first ``SMS_WORKER_STATUS_CHECK_DELAYS_SECONDS``'
  first delay after its submission, then less and less often as it ages. An account whose
  provider posts receipts (``receipt_callbacks = true`` in the providers file: the operator gave
  the provider its callback URL) is different: its receipts come by callback, so a message of it
  is checked only once its receipt is overdue, ``SMS_WORKER_RECEIPT_OVERDUE_SECONDS`` after its
  submission, and never earlier, whatever a callback said meanwhile. With callbacks working, such
  an account is hardly ever checked.
- :class:`CheckBudget`: status-check requests per second per account, in Redis, shared by every
  process (a :class:`~sms_worker.ratelimit.TokenBucket` of its own, key ``checks``, apart from
  the send rate): the account's ``check_rate``, else its ``rate`` times
  ``SMS_WORKER_STATUS_CHECK_SHARE``. The bucket holds one poll interval's worth
  (``SMS_WORKER_POLL_INTERVAL_SECONDS``), so a round every interval can spend the whole rate (a
  bucket of one second's would cap it at rate / interval). What a round cannot pay for waits: the poller moves its next
  check to when the budget will have room (:mod:`.receipts`); nothing is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from sms_worker.config import Settings
from sms_worker.providers.registry import Account
from sms_worker.ratelimit import Grant, TokenBucket

CHECKS: str = "checks"
"""The key part of the status-check buckets (``smsw:checks:<account>``)."""


@dataclass(frozen=True, slots=True)
class CheckSchedule:
    """When a submitted message is checked: ``delays`` (seconds) between checks by its age, the
    last repeating; for the accounts of ``by_callback``, never before ``overdue`` after its
    submission."""

    delays: tuple[float, ...]
    overdue: timedelta
    by_callback: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, accounts: Mapping[str, Account]) -> CheckSchedule:
        """The schedule of a deployment: its settings, and the accounts whose ``receipt_callbacks`` is true."""
        return cls(
            tuple(settings.status_check_delays_seconds),
            timedelta(seconds=settings.receipt_overdue_seconds),
            frozenset(name for name, account in accounts.items() if account.spec.receipt_callbacks),
        )

    def first(self, account: str) -> timedelta:
        """How soon after its submission to ``account`` a message is first checked."""
        return self.overdue if account in self.by_callback else timedelta(seconds=self.delays[0])

    def next(self, account: str, submitted_at: datetime | None, now: datetime) -> datetime:
        """The next check of a message of ``account`` submitted at ``submitted_at`` (None: now),
        checked or reported at ``now``: often while a receipt is likely, then less and less; for
        an account that posts receipts, not before the receipt is overdue."""
        submitted = submitted_at or now
        age = (now - submitted).total_seconds()
        elapsed = 0.0
        delay = self.delays[-1]
        for step in self.delays:
            elapsed += step
            if age < elapsed:
                delay = step
                break
        due = now + timedelta(seconds=delay)
        return max(due, submitted + self.overdue) if account in self.by_callback else due


class CheckBudget:
    """Each account's status-check requests per second (see the module docstring)."""

    def __init__(self, client: redis.Redis, accounts: Mapping[str, Account], share: float, round_seconds: float) -> None:
        """``round_seconds``: the time between two of the poller's rounds; the bucket holds that
        long's worth of checks (at least one), so a round every ``round_seconds`` can spend the
        whole rate, no more."""
        self._client = client
        self._accounts = accounts
        self._share = share
        self._round_seconds = round_seconds

    def rate(self, account: str) -> float:
        """Checks per second ``account`` may make: its ``check_rate``, else its share of ``rate``."""
        spec = self._accounts[account].spec
        return spec.check_rate if spec.check_rate is not None else spec.rate * self._share

    def take(self, account: str, wanted: int) -> Grant:
        """Up to ``wanted`` requests' worth of ``account``'s budget, now; never waits.
        ``Grant.retry_after``: seconds until the next would fit."""
        return self._bucket(account).acquire([1] * wanted)

    def give_back(self, account: str, unused: int) -> None:
        """Return what a round took and did not spend (a listing that answered in fewer requests)."""
        self._bucket(account).refund(unused)

    def _bucket(self, account: str) -> TokenBucket:
        rate = self.rate(account)
        return TokenBucket(self._client, account, rate, max(1, math.ceil(rate * self._round_seconds)), kind=CHECKS)
