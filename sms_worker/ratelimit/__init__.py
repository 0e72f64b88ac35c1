"""Global rate limits per provider account (DESIGN-NOTES trap 1: Celery's rate_limit is per worker).

Two limiters, one rule: an account's ``rate`` per second with ``burst`` to spare.

- :class:`TokenBucket` decides at claim time how many messages a batch may take now; the rest
  wait in the due set, holding no worker.
- :class:`SendWindow` keeps the limit where the provider counts it: each request takes its
  place in a one-second sliding window of departures (at most ``rate``) just before it is
  handed to a thread to be sent, after its claim and its call were written. Jitter between a
  grant and the request (a claim written, a call queued behind others, a busy CPU) can no
  longer bunch requests at the provider; the burst absorbs what is left between the window
  and the provider.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis

from sms_worker.redis_keys import key
from sms_worker.redis_scripts import load_script


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    retry_after: float
    """Seconds until the first message not granted would fit (0 when all were granted)."""
    at: float = 0.0
    """The Redis server's clock when the bucket decided, in epoch seconds."""
    ahead: int = 0
    """Send window only: places taken ahead for requests about to follow."""


class TokenBucket:
    """A provider account's global rate limit, shared by every process through one Lua script."""

    def __init__(self, client: redis.Redis, account: str, rate: float, burst: int, headroom_seconds: float = 0.0, kind: str = "rl") -> None:
        """``headroom_seconds`` keeps ``rate * headroom_seconds`` of the burst back: a grant reaches
        the provider a few milliseconds later, unevenly, and the provider counts arrivals.
        ``kind`` names what the bucket limits, its key's part before the account's name: ``rl``,
        the account's sends; ``checks``, its status checks (:mod:`sms_worker.dispatch.checks`)."""
        self._script = load_script(client, "sms_worker.ratelimit", "token_bucket.lua")
        self._key = key(kind, account)
        self.rate = rate
        self.burst = max(1.0, burst - rate * headroom_seconds)

    def acquire(self, costs: list[int]) -> Grant:
        """Grant the longest prefix of ``costs`` the bucket can pay for now; never waits."""
        if not costs:
            return Grant(0, 0.0)
        granted, wait, at = self._script(keys=[self._key], args=[self.rate, self.burst, *costs])
        return Grant(int(granted), float(wait), float(at))

    def refund(self, tokens: int) -> None:
        """Give back tokens taken for messages that were not sent after all."""
        if tokens > 0:
            self._script(keys=[self._key], args=[self.rate, self.burst, -tokens])


class SendWindow:
    """At most ``rate`` messages (or segments) depart for an account in any sliding second.

    The provider allows ``rate + burst`` in any second where it counts them, on arrival. The
    burst is left to the way from this window to the provider: requests that depart evenly can
    arrive bunched (a thread that waits for the interpreter, a busy CPU, a proxy), and up to
    ``burst / rate`` seconds of such jitter cannot push a second past the provider's limit. (A
    sub-1/s rate still lets one message depart in a second; the bucket keeps its mean.) One Lua
    script on a sorted set of departure times per account, on the Redis server's clock, so every
    worker on every host shares it."""

    def __init__(self, client: redis.Redis, account: str, rate: float) -> None:
        self._script = load_script(client, "sms_worker.ratelimit", "send_window.lua")
        self._key = key("window", account)
        self.limit = max(1, math.floor(rate))

    def admit(self, costs: list[int], ahead: int = 0) -> Grant:
        """Take places now for the longest prefix of requests (one cost each) that fits; a cost
        above the limit fits an empty window. ``retry_after``: seconds until the next would fit.

        With ``ahead``, and if every request fit and the window is then at most half full, also
        take ``ahead`` places for requests about to follow (``Grant.ahead``). The caller must use
        them within ``burst / (2 * rate)`` seconds: counted from now, they depart a little later,
        and that lateness is the half of the burst this leaves to it."""
        if not costs:
            return Grant(0, 0.0)
        admitted, wait, reserved = self._script(keys=[self._key], args=[self.limit, uuid.uuid4().hex, ahead, *costs])
        return Grant(int(admitted), float(wait), ahead=int(reserved))
