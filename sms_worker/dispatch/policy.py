"""The retry policy: what a failed attempt leads to, for the dispatcher and the recovery sweep alike.

Transient failures are retried at most ``max_retries`` times, all within ``window`` of the first
attempt, never past validity (the Telekom SK document's "up to 5 times within 60 minutes"). A
permanent failure is final at once; an account-wide one (a bad key, no balance) is the account's
fault: the attempt does not count and the message goes back to routing.

A failure that may hide an accepted message (a timeout, an unreadable answer, a worker lost
during the call) is *ambiguous* (``ErrorKind.AMBIGUOUS``) and makes the message *unsure* until it
is settled (:mod:`sms_worker.lifecycle.ambiguity`): from then on only that account may carry it. Where the
account's API can be asked whether it has the message, the next attempt asks first (and adopts
what it has); where it cannot, the message's policy decides: ``resend`` on the retry schedule, or
``give-up`` at once, ``unknown``. An unsure message that runs out of retries, window or validity
ends ``unknown`` too, never ``undeliverable`` or ``expired``: it may have been delivered
(:func:`~sms_worker.lifecycle.ambiguity.runs_out`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sms_worker.config import Settings
from sms_worker.dispatch.batch import Defer, Finish
from sms_worker.lifecycle.ambiguity import OnAmbiguous, runs_out, why_unknown
from sms_worker.lifecycle.status import Status
from sms_worker.providers.base import FindsSent
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.providers.registry import Account

PAUSE_RECHECK = timedelta(seconds=30)
"""How long a message pinned to a paused account waits before it looks again."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """The attempt that failed: its account, its number (1 for the first), when it started, and
    the message's limits and policy."""

    account: str
    number: int
    started_at: datetime
    first_attempt_at: datetime
    valid_until: datetime
    pinned: bool
    unsure_since: datetime | None = None
    """When an earlier attempt that may have reached the account began (this one, if the account
    was asked about the earlier one first); None: nothing was unsure."""
    on_ambiguous: OnAmbiguous | None = None
    """The message's own policy; None: the account's."""


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """What an account does after an ambiguous attempt: ask its API (``asks``), else its policy."""

    on_ambiguous: OnAmbiguous
    asks: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    window: timedelta = timedelta(minutes=60)
    backoff_seconds: tuple[float, ...] = (30, 120, 300, 900, 1800)
    on_ambiguous: OnAmbiguous = "resend"
    """The deployment's policy, for accounts that do not name one."""
    accounts: Mapping[str, AccountPolicy] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, accounts: Mapping[str, Account]) -> RetryPolicy:
        """The policy of a deployment's settings and accounts (each account's ``on_ambiguous``,
        and whether its adapter can be asked: :class:`~sms_worker.providers.base.FindsSent`)."""
        return cls(
            settings.max_retries,
            timedelta(seconds=settings.retry_window_seconds),
            settings.retry_backoff_seconds,
            settings.on_ambiguous,
            {
                name: AccountPolicy(account.spec.on_ambiguous or settings.on_ambiguous, isinstance(account.adapter, FindsSent))
                for name, account in accounts.items()
            },
        )

    def policy_of(self, account: str, own: OnAmbiguous | None) -> OnAmbiguous:
        """A message's policy after an ambiguous attempt: its own, else its account's."""
        return own or self.accounts.get(account, AccountPolicy(self.on_ambiguous, False)).on_ambiguous

    def backoff(self, retries_used: int) -> timedelta:
        """The wait before retry ``retries_used + 1`` (the schedule's last step repeats)."""
        return timedelta(seconds=self.backoff_seconds[min(retries_used, len(self.backoff_seconds) - 1)])

    def after_failure(self, error: Failure, attempt: Attempt, now: datetime) -> Defer | Finish:
        """Where a message goes after ``attempt`` failed with ``error``."""
        described = str(error)
        account = self.accounts.get(attempt.account, AccountPolicy(self.on_ambiguous, False))
        ambiguous = error.kind is ErrorKind.AMBIGUOUS
        unsure_since = (attempt.unsure_since or attempt.started_at) if ambiguous else attempt.unsure_since
        unsure = unsure_since is not None
        gone_for = runs_out(Status.UNDELIVERABLE, unsure=unsure)
        if error.pauses_account:
            wait = PAUSE_RECHECK if attempt.pinned or unsure_since else timedelta(0)
            return Defer(
                now + wait, f"account {attempt.account} paused ({described}); attempt not counted", Status.QUEUED, error.code, False, unsure_since
            )
        if error.kind is ErrorKind.PERMANENT:
            return Finish(runs_out(error.status, unsure=unsure), f"permanent failure {described}{why_unknown(unsure_since)}", error.code)
        policy = self.policy_of(attempt.account, attempt.on_ambiguous)
        if ambiguous and not account.asks and policy == "give-up":
            return Finish(
                Status.UNKNOWN,
                f"ambiguous attempt ({described}): {attempt.account} may have the message and cannot be asked, "
                "so by its policy (give-up: at most once) it is not sent again",
                error.code,
            )
        retries_used = attempt.number - 1
        if retries_used >= self.max_retries:
            return Finish(gone_for, f"gave up after {retries_used} retries; last error {described}{why_unknown(unsure_since)}", error.code)
        at = min(now + self.backoff(retries_used), attempt.first_attempt_at + self.window)
        if at <= now:
            return Finish(
                gone_for,
                f"retry window of {self.window} since the first attempt is over; last error {described}{why_unknown(unsure_since)}",
                error.code,
            )
        if at >= attempt.valid_until:
            status = runs_out(Status.EXPIRED, unsure=unsure)
            return Finish(status, f"validity ends before the next retry; last error {described}{why_unknown(unsure_since)}", error.code)
        note = f"transient failure {described}; retry {attempt.number} at {at.isoformat()}"
        if ambiguous and account.asks:
            note = f"ambiguous attempt ({described}); at {at.isoformat()} {attempt.account} is asked whether it has the message before any resend"
        elif ambiguous:
            note = (
                f"ambiguous attempt ({described}); by its policy (resend: at least once) retry {attempt.number} at {at.isoformat()} "
                f"via {attempt.account} only, which may have the message: the recipient may get it twice"
            )
        return Defer(at, note, Status.RETRYING, error.code, unsure_since=unsure_since)
