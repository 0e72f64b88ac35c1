"""``sms-worker scheduler``: Celery beat and the scheduler's own loop."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command, loglevel_option, ready_to_dispatch


@click.command(cls=Command)
@loglevel_option
def scheduler(loglevel: str) -> int:
    """Run Celery beat, the due-time promoter and the reclaimer.

    Beat runs the sweeps and the status poller. The loop moves scheduled messages to their
    queues when due, keeps workers awake while messages wait, rebuilds Redis's queues after
    Redis lost them and takes back the messages of workers that died. Run one per deployment,
    like any Celery beat; Ctrl-C or SIGTERM stops it. Checks the settings, the providers file and the database first, then waits for Redis.
    """
    from sms_worker.scheduler import run_scheduler

    ready_to_dispatch()
    run_scheduler()
    return 0
