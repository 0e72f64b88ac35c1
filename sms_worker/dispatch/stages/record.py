"""Record: each call's outcome becomes the message's next status, by the retry policy.

Accepted: ``submitted`` (or already final, if the provider's first word is), with the provider's
id, word and report. A failure: the decision of :class:`~sms_worker.dispatch.policy.RetryPolicy`
(retry, on the same account only if the provider may have it; a final status; or, for an
account-wide fault, back to routing with the account paused and the attempt not counted). A call
not made after all (:class:`~sms_worker.dispatch.batch.NotSent`) comes back without counting.
"""

from __future__ import annotations

from sms_worker.dispatch.batch import Batch, Defer, Finish, Item, NotSent
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
        self._policy = RetryPolicy.from_settings(rt.settings)

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._rt.clock.now()
        for item in batch.in_play():
            outcome = item.outcome
            if isinstance(outcome, Accepted):
                status = outcome.delivery.status if outcome.delivery is not None else Status.SUBMITTED
                batch.settle(item, Finish(status, f"accepted by {item.account} as {outcome.provider_message_id}", accepted=outcome))
            elif isinstance(outcome, NotSent):
                batch.settle(item, Defer(outcome.until, outcome.reason, counted=False))
            elif isinstance(outcome, Failure):
                if outcome.kind is ErrorKind.PERMANENT and outcome.account_wide:
                    pause_for(self._rt.redis, item.account or "", outcome)
                elif outcome.kind is ErrorKind.PERMANENT:
                    log.info("message %s to %s failed permanently: %s", item.id, mask_phone(item.row.recipient), mask_numbers(str(outcome)))
                batch.settle(item, self._policy.after_failure(outcome, _attempt(item), now))


def _attempt(item: Item) -> Attempt:
    first = item.first_attempt_at or item.row.first_attempt_at
    assert first is not None and item.account is not None
    return Attempt(item.account, item.attempt, first, item.row.valid_until, item.pinned)
