"""``sms-worker worker``: a Celery worker that dispatches messages."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command, loglevel_option, ready_to_dispatch


@click.command(cls=Command)
@click.option("--concurrency", "-c", type=int, metavar="N", default=2, show_default=True, help="Worker processes, each sending its own batches.")
@click.option(
    "--queues",
    "-Q",
    metavar="LIST",
    show_default="all, most urgent first: high,housekeeping,standard,low",
    help="Comma-separated queues to read, in this strict order.",
)
@loglevel_option
@click.option(
    "--hostname",
    "-n",
    metavar="NAME",
    show_default="Celery's: celery@HOST",
    help="Celery node name, unique per worker on a host; %h stands for the host, e.g. w1@%h.",
)
def worker(concurrency: int, queues: str | None, loglevel: str, hostname: str | None) -> int:
    """Run a Celery worker that dispatches messages.

    Each wake-up pops the most urgent due messages, routes each to an account within its rate
    limit and sends it. Run as many as needed, on any host that reaches Redis and the database;
    Ctrl-C or SIGTERM stops one after its current batch. Checks the settings, the providers file and the database first, then waits for Redis.
    """
    from sms_worker.tasks.programs import run_worker

    ready_to_dispatch()
    chosen = {"queues": queues.split(",")} if queues else {}
    run_worker(concurrency=concurrency, loglevel=loglevel, hostname=hostname, **chosen)
    return 0
