"""In-flight markers: what the lease sweep needs to know about a claim whose worker vanished.

At claim time every claimed message gets a ``claimed:<claim>`` marker, ``<claim>`` naming that
one claim. Just before its provider call a worker turns it into ``calling:<claim>``, atomically
and only if it still holds its own claim. The sweep, when a lease runs out, takes the marker
away atomically unless it says ``calling``:

- ``claimed`` (or none): the call never started. The sweep re-queues the message, and the slow
  worker, finding its marker gone, skips the call: the message is sent once.
- ``calling``: the provider may have it. The sweep marks it ``UNKNOWN``; if the worker was only
  slow, its late answer still replaces that guess.
"""

from __future__ import annotations

import uuid
from typing import Iterable

import redis

from sms_worker.queues import keys
from sms_worker.redis_scripts import load_script

CALLING = b"calling"


def mark_claimed(client: redis.Redis, ids: Iterable[uuid.UUID], claim: str, ttl_seconds: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        for message_id in ids:
            pipe.set(keys.in_flight(message_id.hex), f"claimed:{claim}", ex=ttl_seconds)
        pipe.execute()


def start_calls(client: redis.Redis, claims: list[tuple[uuid.UUID, str]]) -> list[bool]:
    """For each (message, claim), in one round trip: does this claim still hold the message?"""
    if not claims:
        return []
    script = load_script(client, "sms_worker.dispatch", "start_call.lua")
    flags = script(keys=[keys.in_flight(message_id.hex) for message_id, _ in claims], args=[claim for _, claim in claims])
    return [bool(flag) for flag in flags]


def take_unless_calling(client: redis.Redis, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """For each expired claim: was its provider call under way (True)? Others lose their marker."""
    script = load_script(client, "sms_worker.dispatch", "take_unless_calling.lua")
    with client.pipeline(transaction=False) as pipe:
        for message_id in ids:
            script(keys=[keys.in_flight(message_id.hex)], client=pipe)
        answers = pipe.execute()
    return {message_id: answer == CALLING for message_id, answer in zip(ids, answers)}


def clear(client: redis.Redis, ids: Iterable[uuid.UUID]) -> None:
    names = [keys.in_flight(message_id.hex) for message_id in ids]
    if names:
        client.delete(*names)
