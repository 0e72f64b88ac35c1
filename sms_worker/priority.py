"""A message's priority: its names, its numbers, and the Celery queue that carries its wake-ups.

The numbers are Telekom SK's scale (3 high, 2 standard, 1 low), stored in the ``priority``
column and used by the queues' Redis keys and Lua scripts, which get them from here.
"""

from __future__ import annotations

from enum import IntEnum

from sms_worker.errors import InvalidField


class Priority(IntEnum):
    LOW = 1
    STANDARD = 2
    HIGH = 3

    @property
    def label(self) -> str:
        """``high``, ``standard`` or ``low``: the word users write and the queue's name."""
        return self.name.lower()

    @property
    def queue(self) -> str:
        """The Celery queue that carries wake-ups for messages of this priority."""
        return self.label

    @classmethod
    def parse(cls, value: object) -> Priority:
        """``high|standard|low`` (any case) or 3/2/1, as a number or its digit; raises
        :class:`InvalidField` naming ``priority`` otherwise."""
        if isinstance(value, Priority):
            return value
        number = value
        if isinstance(value, str):
            word = value.strip().lower()
            named = [priority for priority in cls if priority.label == word]
            if named:
                return named[0]
            number = int(word) if word.isascii() and word.isdigit() else None
        if isinstance(number, int) and not isinstance(number, bool) and number in cls._value2member_map_:
            return cls(number)
        raise InvalidField("priority", f"{value!r} is not one of high, standard, low (or 3, 2, 1)")


MOST_URGENT_FIRST = (Priority.HIGH, Priority.STANDARD, Priority.LOW)
