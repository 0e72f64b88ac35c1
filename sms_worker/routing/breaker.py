"""A circuit breaker per provider account, shared by every worker through Redis.

Closed, it lets everything through and counts transient faults (timeouts, 5xx, 429, the
provider's own "try later"). A run of them, or a failure ratio over a full window of recent
calls, opens it: for ``cooldown`` seconds routing passes the account over and its messages go
to the next eligible account. Then one message is let through as a probe (half-open): a
success closes the breaker, a failure opens it for another cooldown. Permanent, per-message
errors say nothing about the account's health and count as successes. The clock is Redis's, so
every worker agrees when a cooldown ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import redis
from redis.client import Pipeline

from sms_worker.config import Settings
from sms_worker.redis_keys import key
from sms_worker.redis_scripts import load_script, text

UNLIMITED = -1


State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: State
    until: float | None = None
    """Epoch seconds (Redis clock) when an open breaker lets a probe through."""
    reason: str | None = None
    recent_failures: int = 0
    recent_calls: int = 0


@dataclass(frozen=True, slots=True)
class Recorded:
    """The breaker's state after outcomes were recorded, and whether they changed it."""

    state: State
    changed: bool


def breaker_key(account: str) -> str:
    """The hash holding ``account``'s breaker state (``until``, the consecutive failures)."""
    return key("breaker", account)


class Breaker:
    def __init__(self, client: redis.Redis, account: str, *, consecutive_failures: int, window: int, failure_ratio: float, cooldown: float) -> None:
        self._client = client
        self._keys = [breaker_key(account), key("breaker", account, "recent")]
        self._limits = (consecutive_failures, window, failure_ratio, cooldown)

    @classmethod
    def for_account(cls, client: redis.Redis, account: str, settings: Settings) -> Breaker:
        return cls(
            client,
            account,
            consecutive_failures=settings.breaker_consecutive_failures,
            window=settings.breaker_window,
            failure_ratio=settings.breaker_failure_ratio,
            cooldown=settings.breaker_cooldown_seconds,
        )

    def admit(self) -> int:
        """How many messages may go now: ``UNLIMITED``, 0, or 1 (the probe)."""
        capacity, _ = load_script(self._client, "sms_worker.routing", "breaker_admit.lua")(keys=self._keys[:1], args=[self._limits[3]])
        return int(capacity)

    def release_probe(self) -> None:
        """The probe admitted was not sent after all (rate-limited): let the next message probe
        at once, instead of keeping the account out of routing for another cooldown."""
        if self._client.hget(self._keys[0], "state") == b"half_open":
            self._client.hset(self._keys[0], "until", "0")

    def record(self, failures: list[bool], reason: str = "") -> Recorded:
        """Outcomes in the order the calls ended (True: a transient fault); the state after, and
        whether these outcomes changed it."""
        return self.read_record(self.queue_record(self._client, failures, reason))

    def queue_record(self, client: redis.Redis | Pipeline, failures: list[bool], reason: str = "") -> Any:
        """:meth:`record` run on ``client``: with a pipeline, queued (read the answer with
        :meth:`read_record` once the pipeline has run)."""
        outcomes = "".join("1" if failed else "0" for failed in failures)
        return load_script(self._client, "sms_worker.routing", "breaker_record.lua")(
            keys=self._keys, args=[outcomes, *self._limits, reason], client=client
        )

    @staticmethod
    def read_record(answer: Any) -> Recorded:
        state, changed = answer
        return Recorded(_state(text(state)), bool(changed))

    def state(self) -> BreakerState:
        fields = {text(k): text(v) for k, v in self._client.hgetall(self._keys[0]).items()}
        recent = [text(v) for v in self._client.lrange(self._keys[1], 0, -1)]
        failures = recent.count("1")
        if "state" not in fields:
            return BreakerState("closed", recent_failures=failures, recent_calls=len(recent))
        return BreakerState(_state(fields["state"]), float(fields["until"]), fields.get("reason"), failures, len(recent))

    def reset(self) -> None:
        self._client.delete(*self._keys)


def _state(word: str) -> State:
    if word not in get_args(State):
        raise ValueError(f"breaker state {word!r} is not closed, open or half_open")
    return cast(State, word)
