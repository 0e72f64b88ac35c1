"""Record: each call's outcome becomes the message's next status, by the retry policy.

Accepted: ``submitted`` (or already final, if the provider's first word is), with the provider's
id, word and report; accepted by a resend after an ambiguous attempt the account cannot be asked
about, it is marked a possible duplicate. Found (asked after an ambiguous attempt, the provider
had it): adopted the same way, and not sent again. A failure: the decision of :class:`~sms_worker.dispatch.policy.RetryPolicy`
(retry, on the same account only if the provider may have it; a final status; or, for an
account-wide fault, back to routing with the account paused and the attempt not counted). A call
not made after all (:class:`~sms_worker.dispatch.batch.NotSent`) comes back without counting.
"""

from __future__ import annotations

from sms_worker.dispatch.batch import Batch, Defer, Finish, Found, Item, NotSent
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.policy import Attempt, RetryPolicy
from sms_worker.logs import get_logger, mask_numbers, mask_phone
from sms_worker.providers.base import Accepted
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.providers.pause import pause_for
from sms_worker.runtime import Runtime
from sms_worker.status import Status

log = get_logger("dispatch")


class Record(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._policy = RetryPolicy.of(rt.settings, rt.accounts)

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._rt.clock.now()
        for item in batch.in_play():
            outcome = item.outcome
            if isinstance(outcome, Accepted):
                reason = f"accepted by {item.account} as {outcome.provider_message_id}"
                unsure_since = None if item.asked else item.row.unsure_since
                if unsure_since is not None:
                    reason += (
                        f"; POSSIBLE DUPLICATE: resent after an ambiguous attempt (since {unsure_since.isoformat()}) "
                        f"that {item.account} cannot be asked about"
                    )
                batch.settle(item, Finish(_status_of(outcome), reason, accepted=outcome, possible_duplicate=unsure_since is not None))
            elif isinstance(outcome, Found):
                accepted = outcome.accepted
                reason = f"{item.account} had the message from the ambiguous attempt: adopted as {accepted.provider_message_id}, not sent again"
                batch.settle(item, Finish(_status_of(accepted), reason, accepted=accepted))
            elif isinstance(outcome, NotSent):
                batch.settle(item, Defer(outcome.until, outcome.reason, counted=False))
            elif isinstance(outcome, Failure):
                if outcome.pauses_account:
                    pause_for(self._rt.redis, item.account or "", outcome)
                elif outcome.kind is ErrorKind.PERMANENT:
                    log.info("message %s to %s failed permanently: %s", item.id, mask_phone(item.row.recipient), mask_numbers(str(outcome)))
                batch.settle(item, self._policy.after_failure(outcome, _attempt(item), now))


def _status_of(accepted: Accepted) -> Status:
    return accepted.delivery.status if accepted.delivery is not None else Status.SUBMITTED


def _attempt(item: Item) -> Attempt:
    first = item.first_attempt_at or item.row.first_attempt_at
    assert first is not None and item.account is not None and item.called_at is not None
    row = item.row
    unsure_since = None if item.asked else row.unsure_since
    return Attempt(item.account, item.attempt, item.called_at, first, row.valid_until, item.pinned, unsure_since, row.on_ambiguous)
