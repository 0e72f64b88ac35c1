"""Pace: each account's token bucket decides how many of its messages may be claimed now.

The bucket (:class:`~sms_worker.ratelimit.TokenBucket`, one Lua script shared by every worker)
grants the longest prefix of an account's messages it can pay for; the rest wait in the due set
for their token, holding no worker and using no retry. Tokens taken for a message that is not
called after all are given back in :meth:`Pace.after`. The limit is also kept where the provider
counts it, at each request's departure: see :class:`~sms_worker.ratelimit.SendWindow`, used by
the submit stage.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sms_worker.dispatch.batch import Batch, Defer, Item
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.ratelimit import TokenBucket
from sms_worker.runtime import Runtime

LEAD = timedelta(seconds=0.1)
"""A deferred message comes back this much before its token, so demand is already queued when
the token comes (a token not taken while the bucket is full is lost, and the rate with it)."""


class Pace(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def process(self, batch: Batch, downstream: Downstream) -> None:
        now = self._rt.clock.now()
        for account, items in _by_account(batch.in_play()).items():
            bucket = self._bucket(account)
            costs = [self._cost(item) for item in items]
            grant = bucket.acquire(costs)
            for item, cost in zip(items[: grant.granted], costs):
                item.cost = cost
            for position, item in enumerate(items[grant.granted :]):
                due = now + max(timedelta(0), timedelta(seconds=grant.retry_after + position / bucket.rate) - LEAD)
                batch.settle(item, Defer(due, f"rate limit of account {account}"))

    def after(self, batch: Batch) -> None:
        unused: dict[str, int] = defaultdict(int)
        for item in batch:
            if item.cost and not item.called:
                unused[item.account] += item.cost
        for account, tokens in unused.items():
            self._bucket(account).refund(tokens)

    def _bucket(self, account: str) -> TokenBucket:
        spec = self._rt.accounts[account]
        return TokenBucket(self._rt.redis, account, spec.rate, spec.burst, self._rt.settings.rate_limit_headroom_seconds)

    def _cost(self, item: Item) -> int:
        return item.row.segments if self._rt.settings.rate_limit_unit == "segments" else 1


def _by_account(items: list[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        grouped[item.account].append(item)
    return grouped
