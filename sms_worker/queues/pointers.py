"""Pointer queues: push, pop by priority with fair shares, schedule and promote by due time."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable

import redis

from sms_worker.queues import keys
from sms_worker.redis_scripts import load_script, text

if TYPE_CHECKING:
    from sms_worker.runtime import Waker

Pointer = tuple[int, str]
"""(priority, message id as 32 hex digits)."""

_CHUNK = 5000


def push_ready(client: redis.Redis, pointers: Iterable[Pointer]) -> dict[int, int]:
    """Append pointers to their ready lists in one pipelined round trip per chunk."""
    grouped: dict[int, list[str]] = defaultdict(list)
    for priority, message_hex in pointers:
        grouped[priority].append(message_hex)
    with client.pipeline(transaction=False) as pipe:
        for priority, hexes in grouped.items():
            for start in range(0, len(hexes), _CHUNK):
                pipe.rpush(keys.ready(priority), *hexes[start : start + _CHUNK])
        pipe.execute()
    return {priority: len(hexes) for priority, hexes in grouped.items()}


def schedule(client: redis.Redis, entries: Iterable[tuple[int, str, float]]) -> int:
    """Put pointers in the due set, scored by the epoch second they become due."""
    mapping = {f"{priority}{message_hex}": due for priority, message_hex, due in entries}
    items = list(mapping.items())
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), _CHUNK):
            pipe.zadd(keys.DUE, dict(items[start : start + _CHUNK]))
        pipe.execute()
    return len(items)


def is_scheduled(client: redis.Redis, priority: int, message_hex: str) -> bool:
    return client.zscore(keys.DUE, f"{priority}{message_hex}") is not None


def pop_batch(client: redis.Redis, size: int, standard_share: float, low_share: float) -> list[Pointer]:
    """Most urgent first, but standard and low keep their share of every batch when backlogged."""
    ready_keys = [keys.ready(p) for p in keys.PRIORITIES]
    flat = load_script(client, "sms_worker.queues", "pop_batch.lua")(keys=ready_keys, args=[size, standard_share, low_share])
    return [(int(flat[i]), text(flat[i + 1])) for i in range(0, len(flat), 2)]


def pop_urgent(client: redis.Redis, limit: int) -> list[Pointer]:
    """High-priority pointers only: what a running batch takes in between its calls."""
    popped = client.lpop(keys.ready(3), limit) or []
    return [(3, text(item)) for item in popped]


def promote_due(client: redis.Redis, now: float, limit: int = 2000) -> dict[int, int]:
    """Move due pointers to their ready lists; returns how many per priority."""
    script_keys = [keys.DUE, *(keys.ready(p) for p in keys.PRIORITIES)]
    moved = load_script(client, "sms_worker.queues", "promote_due.lua")(keys=script_keys, args=[now, limit])
    return {priority: int(count) for priority, count in zip(keys.PRIORITIES, moved) if int(count)}


def ready_lengths(client: redis.Redis) -> dict[int, int]:
    with client.pipeline(transaction=False) as pipe:
        for priority in keys.PRIORITIES:
            pipe.llen(keys.ready(priority))
        return dict(zip(keys.PRIORITIES, pipe.execute()))


def wakeups(counts_by_priority: dict[int, int], batch_size: int) -> dict[int, int]:
    """One wake-up per batch: a dispatch task pops up to ``batch_size`` pointers."""
    return {priority: math.ceil(count / batch_size) for priority, count in counts_by_priority.items() if count}


def enqueue(client: redis.Redis, waker: "Waker", batch_size: int, ready: list[Pointer], later: list[tuple[int, str, float]]) -> None:
    """Point at rows that are due now (and wake workers for them) or later (in the due set)."""
    if later:
        schedule(client, later)
    if ready:
        waker.wake(wakeups(push_ready(client, ready), batch_size))


def keep_awake(client: redis.Redis, waker: "Waker", batch_size: int) -> None:
    """Wake workers for the pointers waiting now (the waker tops up to its cap, no further).

    A dispatch task that pops a full batch calls this, so a large backlog keeps enough tasks
    coming; the promoter calls it every second, so a wake-up lost with a killed worker is
    replaced."""
    wanted = wakeups(ready_lengths(client), batch_size)
    if wanted:
        waker.wake(wanted)
