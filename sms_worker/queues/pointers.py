"""Pointer queues: push, pop by priority with fair shares, schedule and promote by due time.

Only this package knows how a pointer is written in Redis: a ready list per priority holds
message ids as 32 hex digits, and the due set holds ``<priority digit><hex>`` scored by the
epoch second it becomes due. Everything else sees :class:`Pointer` and :class:`Due` values.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

import redis

from sms_worker.priority import MOST_URGENT_FIRST, Priority
from sms_worker.queues import keys
from sms_worker.redis_scripts import load_script, text

_CHUNK = 5000
_URGENCY_NUMBERS = [p.value for p in MOST_URGENT_FIRST]
"""What the Lua scripts are told the ready lists' priorities are, in the order of their keys."""


@dataclass(frozen=True, slots=True)
class Pointer:
    """A queue entry: which message row to look at, and the priority list it waited in."""

    priority: Priority
    message_id: uuid.UUID

    def __post_init__(self) -> None:
        """A plain 3/2/1 becomes its :class:`Priority`, or ValueError: the Redis key is made from it."""
        if not isinstance(self.priority, Priority):
            object.__setattr__(self, "priority", Priority(self.priority))

    @classmethod
    def _read(cls, priority: Priority, member: bytes | str) -> Pointer:
        return cls(priority, uuid.UUID(hex=text(member)))

    def _due_member(self) -> str:
        return f"{self.priority.value}{self.message_id.hex}"


@dataclass(frozen=True, slots=True)
class Due:
    """A pointer that becomes ready at ``at`` (an aware datetime)."""

    pointer: Pointer
    at: datetime


class Waker(Protocol):
    """Tells workers that pointers are waiting (Celery wake-up tasks in production): one
    wake-up per batch of pointers, per priority."""

    def wake(self, batches_by_priority: Mapping[Priority, int]) -> None: ...

    def declare_queues(self) -> None: ...


def push_ready(client: redis.Redis, pointers: Iterable[Pointer]) -> dict[Priority, int]:
    """Append pointers to their ready lists in one pipelined round trip per chunk; returns how
    many were pushed per priority."""
    grouped: dict[Priority, list[str]] = defaultdict(list)
    for pointer in pointers:
        grouped[pointer.priority].append(pointer.message_id.hex)
    with client.pipeline(transaction=False) as pipe:
        for priority, hexes in grouped.items():
            for start in range(0, len(hexes), _CHUNK):
                pipe.rpush(keys.ready(priority), *hexes[start : start + _CHUNK])
        pipe.execute()
    return {priority: len(hexes) for priority, hexes in grouped.items()}


def schedule(client: redis.Redis, entries: Iterable[Due]) -> int:
    """Put pointers in the due set; a pointer already there takes the new time. Returns how many."""
    mapping = {entry.pointer._due_member(): entry.at.timestamp() for entry in entries}
    items = list(mapping.items())
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), _CHUNK):
            pipe.zadd(keys.DUE, dict(items[start : start + _CHUNK]))
        pipe.execute()
    return len(items)


def is_scheduled(client: redis.Redis, pointer: Pointer) -> bool:
    return client.zscore(keys.DUE, pointer._due_member()) is not None


def pop_batch(client: redis.Redis, size: int, standard_share: float, low_share: float) -> list[Pointer]:
    """Up to ``size`` pointers, most urgent first, but standard and low keep their share (0-1)
    of every batch while they are backlogged."""
    ready_keys = [keys.ready(p) for p in MOST_URGENT_FIRST]
    flat = load_script(client, "sms_worker.queues", "pop_batch.lua")(keys=ready_keys, args=[size, standard_share, low_share, *_URGENCY_NUMBERS])
    return [Pointer._read(Priority(int(flat[i])), flat[i + 1]) for i in range(0, len(flat), 2)]


def pop_urgent(client: redis.Redis, limit: int) -> list[Pointer]:
    """High-priority pointers only: what a running batch takes in between its calls."""
    popped = cast(list[bytes] | None, client.lpop(keys.ready(Priority.HIGH), limit)) or []
    return [Pointer._read(Priority.HIGH, item) for item in popped]


def promote_due(client: redis.Redis, now: datetime, limit: int = 2000) -> dict[Priority, int]:
    """Move pointers due by ``now`` to their ready lists, atomically; returns how many per priority."""
    script_keys = [keys.DUE, *(keys.ready(p) for p in MOST_URGENT_FIRST)]
    moved = load_script(client, "sms_worker.queues", "promote_due.lua")(keys=script_keys, args=[now.timestamp(), limit, *_URGENCY_NUMBERS])
    return {priority: int(count) for priority, count in zip(MOST_URGENT_FIRST, moved) if int(count)}


def promote(client: redis.Redis, waker: Waker, now: datetime, batch_size: int) -> dict[Priority, int]:
    """:func:`promote_due`, then wake workers for what moved (the scheduler runs this)."""
    moved = promote_due(client, now)
    if moved:
        waker.wake(wakeups(moved, batch_size))
    return moved


def ready_lengths(client: redis.Redis) -> dict[Priority, int]:
    with client.pipeline(transaction=False) as pipe:
        for priority in MOST_URGENT_FIRST:
            pipe.llen(keys.ready(priority))
        return dict(zip(MOST_URGENT_FIRST, pipe.execute()))


def wakeups(counts_by_priority: Mapping[Priority, int], batch_size: int) -> dict[Priority, int]:
    """One wake-up per batch: a dispatch task pops up to ``batch_size`` pointers."""
    return {priority: math.ceil(count / batch_size) for priority, count in counts_by_priority.items() if count}


def enqueue(client: redis.Redis, waker: Waker, batch_size: int, ready: list[Pointer], later: list[Due]) -> None:
    """Point at rows that are due now (and wake workers for them) or later (in the due set)."""
    if later:
        schedule(client, later)
    if ready:
        waker.wake(wakeups(push_ready(client, ready), batch_size))


def keep_awake(client: redis.Redis, waker: Waker, batch_size: int) -> None:
    """Wake workers for the pointers waiting now (the waker tops up to its cap, no further).

    A dispatch task that pops a full batch calls this, so a large backlog keeps enough tasks
    coming; the promoter calls it every second, so a wake-up lost with a killed worker is
    replaced."""
    wanted = wakeups(ready_lengths(client), batch_size)
    if wanted:
        waker.wake(wanted)
