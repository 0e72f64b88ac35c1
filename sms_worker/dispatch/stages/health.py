"""Health: each request's outcome feeds its account's circuit breaker and send-rate meter.

A transient fault counts against the account, anything else (an accepted message, one the
provider said it had after an ambiguous attempt, a refusal of this message) for it, so an
adopted message may be the probe that closes a half-open breaker. A question that failed
(:mod:`~sms_worker.dispatch.lookup`) sent nothing and does not count at all. A request that carried
several messages counts once, as accepted if any of them was. The meter counts sends only: an
adopted message was not sent again. Outcomes are sent to Redis in the order the calls ended, at
once when a fault is among them (so a run of faults opens the breaker while it happens),
otherwise gathered for up to ``REPORT_EVERY`` seconds: a stream of successes costs one Redis
round trip per interval. It only looks (it runs before decide, which settles every message): a
failure here is logged, and the batch's outcomes stand.
"""

from __future__ import annotations

import time
from collections import defaultdict

from sms_worker.dispatch.batch import Batch, Found, Item
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.logs import get_logger, mask_numbers
from sms_worker.outages import describe_outage
from sms_worker.providers.base import Accepted
from sms_worker.providers.failures import Failure
from sms_worker.routing.breaker import Breaker
from sms_worker.routing.meter import count_sent
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
REPORT_EVERY = 0.5
"""Seconds successes may be gathered before the breakers and the meter hear of them."""


class Health(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._failures: dict[str, list[bool]] = defaultdict(list)
        self._last_fault: dict[str, str] = {}
        self._accepted: dict[str, int] = defaultdict(int)
        self._reported = time.monotonic()

    def process(self, batch: Batch, downstream: Downstream) -> None:
        requests: dict[tuple[str, int], list[Item]] = defaultdict(list)
        for item in batch.in_play():
            answered = (item.called and isinstance(item.outcome, Accepted | Failure)) or isinstance(item.outcome, Found)
            if answered:
                requests[(item.account, item.request)].append(item)
        faulted = False
        for (account, _), items in sorted(requests.items(), key=lambda entry: entry[0][1]):
            outcome = next((item.outcome for item in items if isinstance(item.outcome, Accepted | Found)), items[0].outcome)
            failed = isinstance(outcome, Failure) and outcome.counts_against_breaker
            self._failures[account].append(failed)
            if isinstance(outcome, Failure) and failed:
                faulted = True
                self._last_fault[account] = mask_numbers(str(outcome))[:200]
            self._accepted[account] += sum(isinstance(item.outcome, Accepted) for item in items)
        if faulted or time.monotonic() - self._reported >= REPORT_EVERY:
            self._report()

    def _report(self) -> None:
        failures, last_fault, accepted = self._failures, self._last_fault, self._accepted
        self._failures, self._last_fault, self._accepted = defaultdict(list), {}, defaultdict(int)
        self._reported = time.monotonic()
        try:
            with self._rt.redis.pipeline(transaction=False) as pipe:
                count_sent(pipe, {account: n for account, n in accepted.items() if n})
                for account, outcomes in failures.items():
                    self._rt.breaker(account).queue_record(pipe, outcomes, last_fault.get(account, ""))
                answers = pipe.execute()[-len(failures) :] if failures else []
            changes = {account: Breaker.read_record(answer) for account, answer in zip(failures, answers)}
        except Exception as error:  # noqa: BLE001 - see the module docstring
            log.warning("could not record the accounts' health: %s", describe_outage(error) or repr(error))
            return
        for account, recorded in changes.items():
            if recorded.changed and recorded.state == "open":
                log.error(
                    "circuit breaker OPEN for account %s after %s; routing passes it over for %.0f s",
                    account,
                    last_fault.get(account, "transient faults"),
                    self._rt.settings.breaker_cooldown_seconds,
                )
            elif recorded.changed:
                log.warning("circuit breaker for account %s is %s again", account, recorded.state)
