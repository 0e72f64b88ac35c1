"""Pausing a provider account after an account-wide fault (bad key, IP not allowed, no balance).

Retrying cannot help until an operator fixes the account, so its messages stay queued instead
of burning retries or failing one by one; ``sms-worker accounts resume NAME`` lifts the pause.
The flag lives in Redis: a Redis that loses its state forgets the pause, and the next message
to that account pauses it again at the cost of one uncounted attempt.
"""

from __future__ import annotations

import redis

from sms_worker.redis_keys import key
from sms_worker.redis_scripts import text


def _paused_key(account: str) -> str:
    return key("paused", account)


def pause(client: redis.Redis, account: str, reason: str) -> None:
    client.set(_paused_key(account), reason)


def resume(client: redis.Redis, account: str) -> bool:
    return bool(client.delete(_paused_key(account)))


def paused_reason(client: redis.Redis, account: str) -> str | None:
    value = client.get(_paused_key(account))
    return None if value is None else text(value)
