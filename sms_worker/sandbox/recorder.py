"""The log of everything sent to any emulated provider, so tests and benchmarks can assert on it.

Records are kept as plain dicts because they are read back mostly as JSON; sequence numbers are
never reused, not even after a reset, so a poller using ``since`` cannot miss or re-read one.
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_right
from typing import Any

from sms_worker.clock import Clock


class Recorder:
    """Submissions in arrival order, each stamped with a sequence number and two timestamps.

    ``received_at`` comes from the injected clock (so it agrees with the emulated statuses);
    ``received_ts`` is the wall clock, for measuring latency from outside.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seq = itertools.count(1)
        self._records: list[dict[str, Any]] = []

    def record(
        self,
        *,
        provider: str,
        endpoint: str,
        to: Any,
        sender: Any,
        text: Any,
        params: dict[str, Any],
        accepted: bool,
        code: str,
        message_id: int | str | None,
        parts: int | None,
    ) -> dict[str, Any]:
        entry = {
            "seq": next(self._seq),
            "provider": provider,
            "endpoint": endpoint,
            "to": to,
            "from": sender,
            "text": text,
            "params": params,
            "accepted": accepted,
            "code": code,
            "message_id": message_id,
            "parts": parts,
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

    def clear(self) -> None:
        self._records.clear()
