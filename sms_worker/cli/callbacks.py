"""``sms-worker callbacks``: receive providers' delivery callbacks."""

from __future__ import annotations

import click

from sms_worker.cli.base import PORT, Command, ListenAddress, ready_to_dispatch


@click.command(cls=Command)
@click.option("--host", type=ListenAddress(), show_default="SMS_WORKER_CALLBACK_HOST, else 127.0.0.1", help="Address to listen on.")
@click.option("--port", type=PORT, metavar="PORT", show_default="SMS_WORKER_CALLBACK_PORT, else 8026", help="TCP port to listen on.")
def callbacks(host: str | None, port: int | None) -> int:
    """Receive providers' delivery callbacks over HTTP.

    Providers post to /callbacks/<account>?token=<secret>; each report is written like a polled status. The secret is the account's
    callback_token in the providers file, else SMS_WORKER_CALLBACK_TOKEN. An account with neither has its callbacks refused, unless
    SMS_WORKER_CALLBACKS_TRUSTED_NETWORK=true says only the providers can reach this receiver. With no token at all and no trusted
    network, the token is the one kept in SMS_WORKER_HOME/callback_token (mode 0600), generated the first time.
    Checks the settings, the providers file and the database first, then waits for Redis.
    """
    from sms_worker.callbacks import serve_callbacks
    from sms_worker.config import get_settings

    ready_to_dispatch()
    settings = get_settings()
    serve_callbacks(host or settings.callback_host, port or settings.callback_port)
    return 0
