"""Celery's own programs, started for this deployment: a worker and Flower."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from sms_worker.config import get_settings
from sms_worker.eviction import warn_if_redis_evicts
from sms_worker.queues.wakeups import QUEUE_ORDER
from sms_worker.runtime import redis_url
from sms_worker.tasks.app import celery_app


def run_worker(*, concurrency: int, queues: Sequence[str] = QUEUE_ORDER, loglevel: str = "info", hostname: str | None = None) -> None:
    """Run a Celery worker in this process until it is stopped: ``concurrency`` pool processes
    reading ``queues`` in that strict order, sending task events (for Flower), without gossip or
    mingle (nothing here needs them, and they slow start-up). ``hostname`` is Celery's node
    name (e.g. ``w1@%h``); by default Celery's own. Celery may end the process itself. The
    settings, providers file and database are checked before (``sms-worker worker``:
    :func:`~sms_worker.cli.base.ready_to_dispatch`), not in every task of a worker that stays up."""
    settings = get_settings()
    warn_if_redis_evicts(redis.Redis.from_url(redis_url(settings)))
    argv = ["worker", "-c", str(concurrency), "-Q", ",".join(queues), "-l", loglevel, "-E", "--without-gossip", "--without-mingle"]
    celery_app.worker_main(argv + (["-n", hostname] if hostname else []))


def run_flower(port: int) -> None:
    """Run Flower, Celery's monitor, on 127.0.0.1:``port``, remembering up to 10,000 tasks."""
    celery_app.start(["flower", f"--port={port}", "--address=127.0.0.1", "--max_tasks=10000"])
