"""Decide: each call's outcome becomes the message's next status, by the retry policy (the ledger
writes it: :mod:`~sms_worker.dispatch.ledger`).

Accepted: ``submitted`` (or already final, if the provider's first word is, with its report's
error code when that is a failure), with the provider's id, word and report; accepted by a resend after an ambiguous attempt the account cannot be asked
about, or whose provider listed a near match of it, it is marked a possible duplicate. Found
(asked after an ambiguous attempt, the provider had it): adopted the same way, and not sent
again. A near match under the policy give-up: ``unknown``, not sent again. A question that failed
(:class:`~sms_worker.dispatch.batch.Unanswered`): asked again later, no attempt counted, no retry
used (:mod:`sms_worker.dispatch.lookup`). A failure: the decision of :class:`~sms_worker.dispatch.policy.RetryPolicy`
(retry, on the same account only if the provider may have it; a final status; or, for an
account-wide fault, back to routing with the account paused and the attempt not counted). A call
not made after all (:class:`~sms_worker.dispatch.batch.NotSent`) comes back without counting, the
row as it was before it (a resend over a near match is not flagged by a call that never went out).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

import redis

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Absent, Batch, Defer, Finish, Found, Item, NearMatch, NotSent, Unanswered
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.policy import PAUSE_RECHECK, Attempt, RetryPolicy
from sms_worker.lifecycle.status import Status
from sms_worker.logs import get_logger, mask_numbers, mask_phone
from sms_worker.providers.base import Accepted
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.providers.pause import pause_for
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
NEAR_MATCH: Final = "NEAR_MATCH"
"""The code of a message given up because its provider lists a near match of it."""


class Pauses(Protocol):
    """Where an account-wide fault pauses its account (every worker then passes it over)."""

    def pause(self, account: str, failure: Failure) -> None: ...


class RedisPauses:
    """:class:`Pauses` as every worker shares them, in Redis (:func:`~sms_worker.providers.pause.pause_for`)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def pause(self, account: str, failure: Failure) -> None:
        pause_for(self._client, account, failure)


class Decide(Stage):
    decides_outcomes = True

    def __init__(self, policy: RetryPolicy, clock: Clock, pauses: Pauses) -> None:
        self._policy = policy
        self._clock = clock
        self._pauses = pauses

    @classmethod
    def of(cls, rt: Runtime) -> Decide:
        """The stage of a worker: the deployment's retry policy, its clock, pauses in Redis."""
        return cls(RetryPolicy.of(rt.settings, rt.accounts), rt.clock, RedisPauses(rt.redis))

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._clock.now()
        for item in batch.in_play():
            outcome = item.outcome
            if isinstance(outcome, Accepted):
                reason = f"accepted by {item.account} as {outcome.provider_message_id}{_possible_duplicate(item)}"
                flagged = item.asked_first is not None or item.row.unsure_since is not None
                batch.settle(item, _adopted(item, outcome, reason, flagged))
            elif isinstance(outcome, Found):
                accepted = outcome.accepted
                reason = f"{item.account} had the message from the ambiguous attempt: adopted as {accepted.provider_message_id}, not sent again"
                batch.settle(item, _adopted(item, accepted, reason))
            elif isinstance(outcome, NearMatch):
                reason = f"{_near(item, outcome)}: it may be this message, so by its policy (give-up: at most once) it is not sent again"
                batch.settle(item, Finish(Status.UNKNOWN, reason, NEAR_MATCH))
            elif isinstance(outcome, Unanswered):
                batch.settle(item, self._ask_again(item, outcome.failure, now))
            elif isinstance(outcome, NotSent):
                batch.settle(item, _not_sent(item, outcome))
            elif isinstance(outcome, Failure):
                if outcome.pauses_account:
                    self._pauses.pause(item.account, outcome)
                elif outcome.kind is ErrorKind.PERMANENT:
                    log.info("message %s to %s failed permanently: %s", item.id, mask_phone(item.row.recipient), mask_numbers(str(outcome)))
                batch.settle(item, self._policy.after_failure(outcome, _attempt(item), now))

    def _ask_again(self, item: Item, failure: Failure, now: datetime) -> Defer:
        """A question that failed: nothing was sent, so no attempt counts and no retry is used;
        the message keeps its status and is asked about again when the retry it waits for would
        have come (an account-wide fault, such as a key refused on the listing, pauses the
        account as on a send, and the message waits for it)."""
        account = item.account
        if failure.pauses_account:
            self._pauses.pause(account, failure)
            until = now + PAUSE_RECHECK
            reason = f"asking {account} whether it has the message failed ({failure}); account paused, nothing sent"
        else:
            until = now + self._policy.backoff(max(0, item.row.attempts - 1))
            reason = f"asking {account} whether it has the message failed ({failure}); nothing sent, no retry used"
        return Defer(until, f"{reason}; asked again at {until.isoformat()}", item.row.status, failure.code)


def _not_sent(item: Item, outcome: NotSent) -> Defer:
    """A call not made after all: the attempt does not count, and the row is as it was before
    it, what its provider was asked said in its history. A message sent again after asking (no
    copy listed, or a near match) is unsure since the lost attempt again and flagged only as it
    was before: the calling statement flagged it in case the call went out (a worker lost during
    it leaves it flagged: :class:`~sms_worker.lifecycle.changes.LostAttempt`), and no second copy
    was made. It is asked again before any resend."""
    if isinstance(item.asked_first, NearMatch):
        reason = f"{outcome.reason}; {_near(item, item.asked_first)}: asked again before any resend, no possible duplicate yet"
    elif isinstance(item.asked_first, Absent):
        reason = f"{outcome.reason}; {item.account} had not listed the message from the ambiguous attempt: asked again before any resend"
    else:
        return Defer(outcome.until, outcome.reason, counted=False)
    return Defer(outcome.until, reason, counted=False, unsure_since=item.row.unsure_since, possible_duplicate=item.row.possible_duplicate)


def _possible_duplicate(item: Item) -> str:
    """What an acceptance after an ambiguous attempt adds to its reason: why the recipient may
    get it twice."""
    since = item.row.unsure_since
    if isinstance(item.asked_first, Absent):
        return (
            f"; POSSIBLE DUPLICATE: resent because {item.account} had not listed the message from the ambiguous attempt, which it may "
            "still take after the part of its listing searched (a request it handles late)"
        )
    if isinstance(item.asked_first, NearMatch):
        return f"; POSSIBLE DUPLICATE: resent by its policy (resend), though {_near(item, item.asked_first)}"
    if item.asked_first is None and since is not None:
        return f"; POSSIBLE DUPLICATE: resent after an ambiguous attempt (since {since.isoformat()}) that {item.account} cannot be asked about"
    return ""


def _near(item: Item, near: NearMatch) -> str:
    return (
        f"{item.account} lists {near.listed.provider_message_id}, a message to this recipient from the ambiguous attempt that may be "
        "this one (its text or sender differs only as a provider rewrites text, or its text is not listed)"
    )


def _adopted(item: Item, accepted: Accepted, reason: str, possible_duplicate: bool = False) -> Finish:
    """The provider has the message (``reason`` says how): ``submitted``, or the final status its
    first word already is. A final failure (a send answered ``failed``) carries its report's code
    and says so (:attr:`~sms_worker.lifecycle.status.Delivery.failure_code`), as a receipt would."""
    delivery = accepted.delivery
    if delivery is None:
        return Finish(Status.SUBMITTED, reason, accepted=accepted, possible_duplicate=possible_duplicate)
    code = delivery.failure_code
    if code is not None:
        reason += f"; {delivery.failure_text(item.account, accepted.provider_status, accepted.provider_error)}"
    return Finish(delivery.status, reason, code, accepted=accepted, possible_duplicate=possible_duplicate)


def _attempt(item: Item) -> Attempt:
    """The attempt ``item``'s call made, as the retry policy reads it. After asking the provider
    about the lost attempt first (no copy listed, or a near match), the message is unsure still,
    since this attempt."""
    call, row = item.call, item.row
    unsure_since = row.unsure_since if item.asked_first is None else call.at
    return Attempt(item.account, call.attempt, call.at, call.first_attempt_at, row.valid_until, item.pinned, unsure_since, row.on_ambiguous)
