"""``sms-worker flower``: Celery's monitor for this deployment."""

from __future__ import annotations

import click

from sms_worker.cli.base import PORT, Command, wait_for_redis


@click.command(cls=Command)
@click.option("--port", type=PORT, metavar="PORT", show_default="SMS_WORKER_FLOWER_PORT, else 5555", help="TCP port to listen on, at 127.0.0.1.")
def flower(port: int | None) -> int:
    """Run Flower, Celery's monitor, for this deployment.

    It shows workers, tasks and Celery's queues of wake-ups; `sms-worker stats` shows the
    messages waiting. Waits for Redis first.
    """
    from sms_worker.config import get_settings
    from sms_worker.tasks.programs import run_flower

    wait_for_redis()
    run_flower(port or get_settings().flower_port)
    return 0
