"""``sms-worker demo``: the whole pipeline on embedded defaults."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command


@click.command(cls=Command)
@click.option("--exit-when-done", is_flag=True, help="Exit once every message is final: 0 if each ended as expected, else 1.")
@click.option("--timeout", type=float, default=180.0, show_default=True, metavar="SECONDS", help="Stop watching after this long, final or not.")
def demo(exit_when_done: bool, timeout: float) -> int:
    """Run the whole pipeline on embedded defaults and watch it.

    Starts a bundled Redis, a SQLite database, the provider sandbox, two workers, the scheduler
    and Flower under SMS_WORKER_HOME/demo, sends a mix of messages and shows a live table.
    Without --exit-when-done it keeps running until Ctrl-C, kill (SIGTERM) or a closed terminal
    (SIGHUP), which stop everything it started, at any moment, then exits 0. With it, the exit
    code is 0 if every message ended as expected, 1 if not, 130 if stopped before the end. A
    child that exits on its own ends the demo with 1.
    """
    from sms_worker.demo import run_demo

    return run_demo(exit_when_done=exit_when_done, timeout=timeout)
