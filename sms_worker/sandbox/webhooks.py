"""Delivery callbacks the emulated providers post, as the real ones do once a message is final.

Each is a task on the sandbox's event loop that sleeps until the message's final moment on the
injected clock, renders the provider's callback then (so it says what the provider would say
at that moment) and posts it. Outcomes are kept in ``posted``; a receiver that is down or
answers an error is recorded there, never retried (sms_worker's poller is the safety net).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from sms_worker.clock import Clock

CALLBACK_TIMEOUT = 5.0


class Webhooks:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self.posted: list[dict[str, Any]] = []

    def post_at(self, url: str, at: float, render: Callable[[], dict[str, Any]]) -> None:
        """Post ``render()`` as JSON to ``url`` at ``at`` (epoch seconds on the injected clock);
        call from a request handler, on the sandbox's event loop."""
        task = asyncio.get_running_loop().create_task(self._post(url, at, render))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, at: float, render: Callable[[], dict[str, Any]]) -> None:
        await asyncio.sleep(max(0.0, at - self._clock.now().timestamp()))
        body = render()
        try:
            async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT) as client:
                response = await client.post(url, json=body)
            outcome: int | str = response.status_code
        except httpx.HTTPError as error:
            outcome = type(error).__name__
        self.posted.append({"url": url, "body": body, "outcome": outcome})

    def clear(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.posted.clear()
