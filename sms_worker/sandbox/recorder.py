"""The log of everything sent to any emulated provider, and a count of the requests each endpoint
served, so tests and benchmarks can assert on them.

Records are kept as plain dicts because they are read back mostly as JSON; sequence numbers are
never reused, not even after a reset, so a poller using ``since`` cannot miss or re-read one.
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_right
from collections import Counter
from typing import Any, Protocol

from sms_worker.clock import Clock


class Answered(Protocol):
    """What the log keeps of an answer; every emulator's answer record has it."""

    @property
    def accepted(self) -> bool: ...

    @property
    def code(self) -> str:
        """``OK``, the provider's error code, or ``HTTP_<status>`` for a bare fault answer."""
        ...

    @property
    def message_id(self) -> int | str | None: ...

    @property
    def parts(self) -> int | None: ...


class Recorder:
    """Submissions in arrival order, each stamped with a sequence number and two timestamps.

    ``received_at`` comes from the injected clock (so it agrees with the emulated statuses);
    ``received_ts`` is the wall clock, for measuring latency from outside.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seq = itertools.count(1)
        self._records: list[dict[str, Any]] = []
        self._requests: Counter[tuple[str, str]] = Counter()

    def record(self, provider: str, endpoint: str, answer: Answered, *, to: Any, sender: Any, text: Any, params: dict[str, Any]) -> dict[str, Any]:
        """One request as it was sent (``to``, ``sender``, ``text``, other ``params``) and answered."""
        entry = {
            "seq": next(self._seq),
            "provider": provider,
            "endpoint": endpoint,
            "to": to,
            "from": sender,
            "text": text,
            "params": params,
            "accepted": answer.accepted,
            "code": answer.code,
            "message_id": answer.message_id,
            "parts": answer.parts,
            "received_at": self._clock.now().isoformat(timespec="milliseconds"),
            "received_ts": time.time(),
        }
        self._records.append(entry)
        return entry

    def submissions(self, provider: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Records with ``seq`` greater than ``since``, optionally of one provider only."""
        start = bisect_right(self._records, since, key=lambda entry: entry["seq"])
        tail = self._records[start:]
        if provider is None:
            return tail
        return [entry for entry in tail if entry["provider"] == provider]

    def count(self, provider: str, endpoint: str) -> None:
        """One more request served by ``provider``'s ``endpoint`` (the fault engine's names)."""
        self._requests[provider, endpoint] += 1

    def requests(self) -> dict[str, dict[str, int]]:
        """Requests served since start or the last reset, by provider, then endpoint."""
        counts: dict[str, dict[str, int]] = {}
        for (provider, endpoint), served in sorted(self._requests.items()):
            counts.setdefault(provider, {})[endpoint] = served
        return counts

    def clear(self) -> None:
        self._records.clear()
        self._requests.clear()
