"""Whether Redis may evict our keys: with a ``maxmemory-policy`` other than ``noeviction``, a
full Redis drops keys silently, and a lost token bucket, send window or breaker lets workers
over-send (a lost pointer waits for the recovery sweep). Checked at worker and scheduler start
and shown by ``sms-worker stats``."""

from __future__ import annotations

import redis

from sms_worker.logs import get_logger
from sms_worker.redis_scripts import text

log = get_logger("redis")

SAFE_POLICY = "noeviction"


def eviction_policy(client: redis.Redis) -> str | None:
    """Redis's ``maxmemory-policy``, or None where ``CONFIG GET`` is refused (managed Redis)."""
    try:
        found = client.config_get("maxmemory-policy")
    except redis.ResponseError:
        return None
    value = found.get("maxmemory-policy")
    return None if value is None else text(value)


def eviction_warning(client: redis.Redis) -> str | None:
    """A sentence for the operator when Redis may evict keys; None when it may not (or cannot tell)."""
    policy = eviction_policy(client)
    if policy is None or policy == SAFE_POLICY:
        return None
    return (
        f"Redis may evict keys (maxmemory-policy {policy}): a lost rate-limit bucket or breaker lets workers over-send; "
        f"set maxmemory-policy {SAFE_POLICY}"
    )


def warn_if_redis_evicts(client: redis.Redis) -> None:
    """Log :func:`eviction_warning` if there is one; a Redis not reachable yet is left to the
    processes' own outage handling."""
    try:
        warning = eviction_warning(client)
    except redis.RedisError:
        return
    if warning is not None:
        log.warning("%s", warning)
