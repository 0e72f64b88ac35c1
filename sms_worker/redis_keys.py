"""The one prefix of every Redis key sms_worker writes. Each module that keeps state in Redis
names its own keys under it: ``queues.keys`` (ready lists, due set), ``ratelimit`` (token
buckets, send windows), ``routing.breaker``, ``routing.meter`` and ``providers.pause``."""

from __future__ import annotations

PREFIX = "smsw"


def key(*parts: object) -> str:
    """``smsw:<part>:<part>...``: ``key("breaker", "dexatel")`` is ``"smsw:breaker:dexatel"``."""
    return ":".join([PREFIX, *map(str, parts)])
