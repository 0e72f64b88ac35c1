"""``sms-worker redis``: the embedded Redis as a process of its own."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command, fail


@click.command("redis", cls=Command)
def redis_server() -> int:
    """Run the embedded Redis of SMS_WORKER_HOME in the foreground.

    Until Ctrl-C or SIGTERM, which stop it. It listens on a free port of 127.0.0.1 and writes its
    URL to SMS_WORKER_HOME/redis.url, where every other command finds it; the worker, scheduler,
    Flower and callbacks wait for it (SMS_WORKER_REDIS_WAIT_SECONDS) and never start one. Its data
    survives a restart (append-only file in SMS_WORKER_HOME/redis). One per home; with
    SMS_WORKER_REDIS_URL set it runs nothing and waits to be stopped.
    """
    from sms_worker.config import get_settings
    from sms_worker.redis_foreground import RedisAlreadyRun, run_embedded_redis

    try:
        return run_embedded_redis(get_settings())
    except RedisAlreadyRun as error:
        fail("SMS_WORKER_HOME", str(error), 1)
