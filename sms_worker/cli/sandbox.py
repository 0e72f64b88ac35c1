"""``sms-worker sandbox``: the provider emulations over HTTP."""

from __future__ import annotations

import click

from sms_worker.cli.base import PORT, Command, ListenAddress


@click.command(cls=Command)
@click.option("--host", type=ListenAddress(), show_default="SMS_WORKER_SANDBOX_HOST, else 127.0.0.1", help="Address to listen on.")
@click.option("--port", type=PORT, metavar="PORT", show_default="SMS_WORKER_SANDBOX_PORT, else 8025", help="TCP port to listen on.")
@click.option(
    "--telekom-sk-callback-url",
    metavar="URL",
    help="Post Telekom SK delivery callbacks here, e.g. http://127.0.0.1:8026/callbacks/telekom-sk?token=TOKEN (the receiver's token).",
)
@click.option(
    "--dexatel-webhook-url",
    metavar="URL",
    help="Post Dexatel delivery webhooks here, e.g. http://127.0.0.1:8026/callbacks/dexatel?token=TOKEN (the receiver's token).",
)
@click.option("--post-status-callbacks", is_flag=True, help="Post Telefoon's per-message status_callback URLs.")
def sandbox(
    host: str | None, port: int | None, telekom_sk_callback_url: str | None, dexatel_webhook_url: str | None, post_status_callbacks: bool
) -> int:
    """Serve the provider emulations over HTTP.

    Each provider's API under its own prefix (/telekom-sk, /dexatel, ...), with faults to inject
    at /_sandbox/faults. One process: its state lives in memory.
    """
    from sms_worker.config import get_settings
    from sms_worker.sandbox.server import run

    settings = get_settings()
    run(
        host or settings.sandbox_host,
        port or settings.sandbox_port,
        telekom_sk_callback_url=telekom_sk_callback_url,
        dexatel_webhook_url=dexatel_webhook_url,
        post_status_callbacks=post_status_callbacks,
    )
    return 0
