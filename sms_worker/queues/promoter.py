"""The promoter: moves due pointers (scheduled sends, retries, rate-limit deferrals) into the
ready lists and wakes workers. Due times never sit in Celery as ETA tasks (DESIGN-NOTES trap 2).
"""

from __future__ import annotations

from sms_worker.queues.pointers import promote_due, wakeups
from sms_worker.runtime import Runtime


def promote_once(rt: Runtime) -> dict[int, int]:
    moved = promote_due(rt.redis, rt.clock.now().timestamp())
    if moved:
        rt.waker.wake(wakeups(moved, rt.settings.batch_size))
    return moved
