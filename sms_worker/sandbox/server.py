"""Serve the sandbox over real HTTP, for the demo and benchmarks.

One process only: the sandbox's state (submissions, sessions, messages) lives in memory, so
several workers would each see a part of it. Logging per request is off because at thousands
of requests per second the log, not the handler, would be the bottleneck.
"""

from __future__ import annotations

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
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, date_header=False)  # the app's Date: its clock


if __name__ == "__main__":
    from sms_worker.config import get_settings

    settings = get_settings()
    run(settings.sandbox_host, settings.sandbox_port)
