"""Accepted messages and the status each one has at a given moment on the clock.

Nothing runs in the background: a message stores the moments it changes state, and its status
is computed when asked. That keeps the sandbox exact under a FakeClock and costs nothing per
message while nobody is looking.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from sms_worker.clock import Clock
from sms_worker.sandbox.states import State

FIRST_MESSAGE_ID = 100000


@dataclass(frozen=True, slots=True)
class Message:
    """Moments are epoch seconds on the injected clock.

    ``due`` is when the message may leave the queue (acceptance, or a later ``delivery_time``);
    validity is counted from then, because a scheduled message would otherwise be expired
    before its time came (validity is at most 1440 minutes).
    """

    id: int
    due: float
    sent_at: float
    final_at: float
    expires_at: float
    final: State

    def status_at(self, now: float) -> State:
        if now < self.due:
            return State.SCHEDULED
        if self.expires_at <= self.sent_at and now >= self.expires_at:
            return State.EXPIRED
        if now < self.sent_at:
            return State.QUEUED
        if now < self.final_at:
            return State.SENT
        return self.final


class MessageStore:
    """Messages by id; ids count up from 100000 and are never reused, not even after a reset."""

    def __init__(self, clock: Clock, sent_after: float, delivered_after: float) -> None:
        self._clock = clock
        self._sent_after = sent_after
        self._delivered_after = delivered_after
        self._ids = itertools.count(FIRST_MESSAGE_ID)
        self._messages: dict[int, Message] = {}

    def now(self) -> float:
        return self._clock.now().timestamp()

    def accept(self, validity_minutes: int, delivery_time: datetime | None, final: State) -> Message:
        now = self.now()
        due = max(now, delivery_time.timestamp()) if delivery_time is not None else now
        message = Message(
            id=next(self._ids),
            due=due,
            sent_at=due + self._sent_after,
            final_at=due + self._delivered_after,
            expires_at=due + validity_minutes * 60,
            final=final,
        )
        self._messages[message.id] = message
        return message

    def get(self, message_id: int) -> Message | None:
        return self._messages.get(message_id)

    def clear(self) -> None:
        self._messages.clear()
