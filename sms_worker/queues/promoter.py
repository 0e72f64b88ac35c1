"""The promoter: moves due pointers (scheduled sends, retries, rate-limit deferrals) into the
ready lists and wakes workers. Due times never sit in Celery as ETA tasks (DESIGN-NOTES trap 2).
"""

from __future__ import annotations

import threading
import time

from sms_worker.logs import get_logger
from sms_worker.queues.pointers import keep_awake, promote_due, wakeups
from sms_worker.recovery import ensure_redis_state
from sms_worker.runtime import Runtime

log = get_logger("promoter")
KEEP_AWAKE_EVERY_SECONDS = 1.0


def promote_once(rt: Runtime) -> dict[int, int]:
    moved = promote_due(rt.redis, rt.clock.now().timestamp())
    if moved:
        rt.waker.wake(wakeups(moved, rt.settings.batch_size))
    return moved


def run_promoter(rt: Runtime, stop: threading.Event) -> None:
    last_wake = 0.0
    while not stop.is_set():
        try:
            ensure_redis_state(rt)
            promote_once(rt)
            if time.monotonic() - last_wake >= KEEP_AWAKE_EVERY_SECONDS:
                keep_awake(rt.redis, rt.waker, rt.settings.batch_size)
                last_wake = time.monotonic()
        except Exception:  # noqa: BLE001 - Redis or the database may be briefly away; keep promoting
            log.exception("promoter tick failed; retrying")
            stop.wait(1.0)
        stop.wait(rt.settings.promoter_interval_seconds)
