"""Pausing a provider account after an account-wide fault (bad key, IP not allowed, no balance).

Retrying cannot help until an operator fixes the account, so its messages stay queued instead
of burning retries or failing one by one; ``sms-worker providers resume NAME`` lifts the pause.
The flag lives in Redis: a Redis that loses its state forgets the pause, and the next message
to that account pauses it again at the cost of one uncounted attempt.
"""

from __future__ import annotations

import redis

from sms_worker.queues import keys


def pause(client: redis.Redis, account: str, reason: str) -> None:
    client.set(keys.paused(account), reason)


def resume(client: redis.Redis, account: str) -> bool:
    return bool(client.delete(keys.paused(account)))


def paused_reason(client: redis.Redis, account: str) -> str | None:
    value = client.get(keys.paused(account))
    return value.decode() if value is not None else None
