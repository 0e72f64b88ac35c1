"""Global rate limits per provider account (DESIGN-NOTES trap 1: Celery's rate_limit is per worker)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from sms_worker.queues import keys
from sms_worker.redis_scripts import load_script


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    retry_after: float
    """Seconds until the first message not granted would fit (0 when all were granted)."""
    at: float = 0.0
    """The Redis server's clock when the bucket decided, in epoch seconds."""


class TokenBucket:
    """A provider account's global rate limit, shared by every process through one Lua script."""

    def __init__(self, client: redis.Redis, account: str, rate: float, burst: int, headroom_seconds: float = 0.0) -> None:
        """``headroom_seconds`` keeps ``rate * headroom_seconds`` of the burst back: a grant reaches
        the provider a few milliseconds later, unevenly, and the provider counts arrivals."""
        self._script = load_script(client, "sms_worker.ratelimit", "token_bucket.lua")
        self._key = keys.rate_limit(account)
        self.rate = rate
        self.burst = max(1.0, burst - rate * headroom_seconds)

    def acquire(self, costs: list[int]) -> Grant:
        """Grant the longest prefix of ``costs`` the bucket can pay for now; never waits."""
        if not costs:
            return Grant(0, 0.0)
        granted, wait, at = self._script(keys=[self._key], args=[self.rate, self.burst, *costs])
        return Grant(int(granted), float(wait), float(at))
