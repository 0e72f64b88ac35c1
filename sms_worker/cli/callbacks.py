"""``sms-worker callbacks``: receive providers' delivery callbacks."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command


@click.command(cls=Command)
@click.option("--host", metavar="ADDRESS", show_default="SMS_WORKER_CALLBACK_HOST, else 127.0.0.1", help="Address to listen on.")
@click.option("--port", type=int, metavar="PORT", show_default="SMS_WORKER_CALLBACK_PORT, else 8026", help="TCP port to listen on.")
def callbacks(host: str | None, port: int | None) -> int:
    """Receive providers' delivery callbacks over HTTP.

    Providers post to /callbacks/<account>; each report is written like a polled status. With SMS_WORKER_CALLBACK_TOKEN set, a request
    must carry it as ?token=.
    """
    from sms_worker.callbacks import serve_callbacks
    from sms_worker.config import get_settings

    settings = get_settings()
    serve_callbacks(host or settings.callback_host, port or settings.callback_port)
    return 0
