"""Celery wake-ups: one per batch of pointers, capped per queue, topped up while a backlog remains."""

from __future__ import annotations

from sms_worker.producer import send_many
from sms_worker.queues.pointers import keep_awake
from sms_worker.queues.wakeups import CeleryWaker
from sms_worker.runtime import build_runtime, redis_url


def test_a_large_enqueue_publishes_wakeups_up_to_the_cap_and_keep_awake_tops_them_up(settings_for, redis_client, clock):
    settings = settings_for(batch_size=10)
    waker = CeleryWaker(redis_url(settings), max_pending=5)
    rt = build_runtime(settings, waker=waker, clock=clock)

    send_many([{"to": "+421900000001", "text": f"m{n}", "priority": "low"} for n in range(200)], runtime=rt)
    assert redis_client.llen("low") == 5

    redis_client.delete("low")
    send_many([{"to": "+421900000001", "text": "urgent", "priority": "high"}], runtime=rt)
    assert (redis_client.llen("high"), redis_client.llen("low")) == (1, 0)

    keep_awake(rt.redis, rt.waker, 10)
    assert (redis_client.llen("high"), redis_client.llen("low")) == (1, 5)
    keep_awake(rt.redis, rt.waker, 10)
    assert (redis_client.llen("high"), redis_client.llen("low")) == (1, 5)
    rt.close()
