"""Delivery callbacks the emulated providers post, as the real ones do once a message is final.

Each is a task on the sandbox's event loop that sleeps until the message's final moment on the
injected clock, renders the provider's callback then (so it says what the provider would say
at that moment) and posts it, on connections kept between callbacks. Outcomes are kept in ``posted``; a receiver that is down or
answers an error is recorded there, never retried (sms_worker's poller is the safety net), and
logged as a warning naming the URL without its query (where the receiver's token is): ``the
telekom-sk sandbox's callback to http://127.0.0.1:8026/callbacks/telekom-sk was answered 403``.
A flood is one line a minute per URL and outcome, counting the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from sms_worker.clock import Clock
from sms_worker.logs import RepeatedWarnings, get_logger, origin

CALLBACK_TIMEOUT = 5.0
MAX_CONNECTIONS: Final = 32
"""Callbacks in flight at once, per emulated provider."""
FAILURES_LOGGED_EVERY: Final = 60.0
"""Seconds between two log lines about callbacks to one URL that failed alike."""
log = get_logger("sandbox.webhooks")


class Webhooks:
    """The callbacks of the emulated provider ``provider`` (its name, for the log)."""

    def __init__(self, clock: Clock, provider: str) -> None:
        self._clock = clock
        self._provider = provider
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures = RepeatedWarnings(log, clock, FAILURES_LOGGED_EVERY)
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self.posted: list[dict[str, Any]] = []

    def post_at(self, url: str, at: float, render: Callable[[], dict[str, Any]]) -> None:
        """Post ``render()`` as JSON to ``url`` at ``at`` (epoch seconds on the injected clock);
        call from a request handler, on the sandbox's event loop."""
        task = asyncio.get_running_loop().create_task(self._post(url, at, render))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, at: float, render: Callable[[], dict[str, Any]]) -> None:
        while (left := at - self._clock.now().timestamp()) > 0:  # an event loop's timer may fire a little early (uvloop's ms ticks)
            await asyncio.sleep(left)
        body = render()
        shown = f"{origin(url)}{urlsplit(url).path}"
        try:
            async with self._posting():
                response = await self._sender().post(url, json=body)
            outcome: int | str = response.status_code
            if response.is_error:
                self._failures.warn(
                    (shown, outcome), f"the {self._provider} sandbox's callback to {shown} was answered {outcome}; it is not posted again"
                )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            outcome = type(error).__name__
            self._failures.warn(
                (shown, outcome),
                f"the {self._provider} sandbox's callback to {shown} could not be delivered ({outcome}: {error}); it is not posted again",
            )
        self.posted.append({"url": url, "body": body, "outcome": outcome})

    def _posting(self) -> asyncio.Semaphore:
        """At most :data:`MAX_CONNECTIONS` posts in the client at once, the others waiting here in
        order: httpcore's pool looks at every request waiting in it each time a connection is
        freed, and with thousands of callbacks due at once the sandbox spent its time there, late
        with everything else (its answers to sends timed out)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        return self._slots

    def _sender(self) -> httpx.AsyncClient:
        """One client for every callback, made on the event loop at the first one: its connections
        are kept and reused, as a provider's are, so hundreds of callbacks a second do not each
        open one. At most :data:`MAX_CONNECTIONS` at once; the others wait for one (only the
        exchange itself has :data:`CALLBACK_TIMEOUT`)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(CALLBACK_TIMEOUT, pool=None), limits=httpx.Limits(max_connections=MAX_CONNECTIONS))
        return self._client

    def clear(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.posted.clear()
