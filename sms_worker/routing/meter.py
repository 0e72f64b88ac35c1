"""How fast each account is actually sending: accepted messages counted per second in Redis.

The rate limit says what an account may do; this says what it does, for ``sms-worker
accounts``. Counters live two minutes, so the cost is a few small keys per account.
"""

from __future__ import annotations

import time

import redis
from redis.client import Pipeline

from sms_worker.redis_keys import key

KEEP_SECONDS = 120


def count_sent(client: redis.Redis | Pipeline, counts: dict[str, int], now: float | None = None) -> None:
    """Add each account's accepted messages to this second's counter; into ``client``'s queue
    when it is a pipeline (the caller executes it), else in one round trip."""
    second = int(now if now is not None else time.time())
    pipe = client if isinstance(client, Pipeline) else client.pipeline(transaction=False)
    for account, n in counts.items():
        counter = key("sent", account, second)
        pipe.incrby(counter, n)
        pipe.expire(counter, KEEP_SECONDS)
    if pipe is not client:
        pipe.execute()


def current_rate(client: redis.Redis, account: str, seconds: int = 10, now: float | None = None) -> float:
    """Messages per second accepted over the last ``seconds`` whole seconds."""
    last = int(now if now is not None else time.time()) - 1
    values = client.mget([key("sent", account, second) for second in range(last - seconds + 1, last + 1)])
    return sum(int(value) for value in values if value is not None) / seconds
