"""Serve the sandbox over real HTTP, for the demo and benchmarks.

One process only: the sandbox's state (submissions, sessions, messages) lives in memory, so
several workers would each see a part of it. Logging per request is off because at thousands
of requests per second the log, not the handler, would be the bottleneck.

The sandbox stands for a provider's own hosts, so it must record each request as it comes: what
outlives a full garbage collection (the log of submissions, the emulated messages: they are kept
until a reset) is frozen out of the collector's sight (:func:`_freeze_survivors`). Unfrozen, each
full collection scanned the whole log, pausing the event loop 50 to 130 ms once a second at
500 requests a second, and the requests that waited were recorded together: bunched arrivals
that no client sent.
"""

from __future__ import annotations

import gc
from typing import Any

import uvicorn

from sms_worker.sandbox.app import create_app
from sms_worker.sandbox.settings import SandboxSettings


def run(
    host: str, port: int, *, telekom_sk_callback_url: str | None = None, dexatel_webhook_url: str | None = None, post_status_callbacks: bool = False
) -> None:
    settings = SandboxSettings(
        telekom_sk_callback_url=telekom_sk_callback_url, dexatel_webhook_url=dexatel_webhook_url, post_status_callbacks=post_status_callbacks
    )
    app = create_app(settings=settings)
    gc.freeze()
    gc.callbacks.append(_freeze_survivors)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, date_header=False)  # the app's Date: its clock


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """After a full collection, what survived it is the sandbox's state: never scanned again
    (objects frozen are still freed when nothing refers to them; only a cycle among them is kept)."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


if __name__ == "__main__":
    from sms_worker.config import get_settings

    settings = get_settings()
    run(settings.sandbox_host, settings.sandbox_port)
