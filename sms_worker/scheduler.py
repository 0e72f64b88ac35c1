"""The scheduler process: Celery beat (sweeps, status polling) in a thread, and beside it our own
loop: promote due pointers, keep workers awake, keep Redis's queues whole, take back the claims
of lost workers.

Every tick is retried on its own schedule: after a Redis or database outage each resumes within
``RETRY_AFTER_FAILURE`` of the server's return, so sending resumes within about a second.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from celery.beat import EmbeddedService

from sms_worker.config import get_settings
from sms_worker.eviction import warn_if_redis_evicts
from sms_worker.logs import get_logger
from sms_worker.outages import OutageInOneLine, describe_outage
from sms_worker.queues.pointers import keep_awake, promote
from sms_worker.recovery import RECLAIM_EVERY, Reclaimer, ensure_redis_state
from sms_worker.runtime import Runtime, process_runtime
from sms_worker.tasks.app import celery_app

log = get_logger("scheduler")
KEEP_AWAKE_EVERY = 1.0
RETRY_AFTER_FAILURE = 0.2


class _Every:
    """A task run every ``seconds``, sooner again after it failed, logging an outage once."""

    def __init__(self, name: str, seconds: float, run: Callable[[], object]) -> None:
        self.name, self.seconds, self.run = name, seconds, run
        self.next = 0.0
        self.failing: str | None = None

    def tick(self, now: float) -> None:
        if now < self.next:
            return
        try:
            self.run()
        except Exception as error:
            reason = describe_outage(error)
            if reason is None:
                log.exception("%s failed; trying again", self.name)
            elif reason != self.failing:
                log.warning("%s paused: %s", self.name, reason)
            self.failing = reason or self.failing
            self.next = now + RETRY_AFTER_FAILURE
            return
        if self.failing:
            log.warning("%s running again", self.name)
            self.failing = None
        self.next = now + self.seconds


def run_scheduler() -> None:
    """Run the scheduler until SIGTERM or SIGINT: beat in a thread (its schedule file under
    ``SMS_WORKER_HOME``) and :func:`run_scheduler_loop` in this one, on this process's runtime,
    built (the providers file read) before anything starts or says it runs."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    rt = process_runtime()
    logging.getLogger("celery.beat").addFilter(OutageInOneLine())
    beat = EmbeddedService(celery_app, thread=True, schedule_filename=str(settings.home / "celerybeat-schedule"))
    beat.start()
    log.info("scheduler running: beat, promoter and reclaimer")
    warn_if_redis_evicts(rt.redis)
    try:
        run_scheduler_loop(rt, stop)
    finally:
        beat.stop()


def run_scheduler_loop(rt: Runtime, stop: threading.Event) -> None:
    """Tick each of the loop's tasks on its own schedule until ``stop`` is set."""
    reclaimer = Reclaimer(rt)
    tasks = [
        _Every("rebuilding Redis's queues", rt.settings.promoter_interval_seconds, lambda: ensure_redis_state(rt)),
        _Every(
            "promoting due messages",
            rt.settings.promoter_interval_seconds,
            lambda: promote(rt.redis, rt.waker, rt.clock.now(), rt.settings.batch_size),
        ),
        _Every("waking workers", KEEP_AWAKE_EVERY, lambda: keep_awake(rt.redis, rt.waker, rt.settings.batch_size)),
        _Every("taking back lost workers' claims", RECLAIM_EVERY, reclaimer.tick),
    ]
    while not stop.is_set():
        now = time.monotonic()
        for task in tasks:
            task.tick(now)
        stop.wait(rt.settings.promoter_interval_seconds)
