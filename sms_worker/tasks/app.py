"""The Celery application.

Queues ``high``, ``housekeeping``, ``standard`` and ``low`` are read in that strict order, with
prefetch disabled, so a free worker always takes the most urgent wake-up (DESIGN-NOTES trap 3).
Wake-ups carry no message ids: the dispatch task pops the most urgent pointers itself, keeping
a share of every batch for standard and low so they never starve.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from sms_worker.config import get_settings
from sms_worker.runtime import redis_url
from sms_worker.validation import QUEUE_OF_PRIORITY

QUEUE_ORDER = ("high", "housekeeping", "standard", "low")
DISPATCH_TASK = "sms_worker.dispatch"


def create_celery() -> Celery:
    settings = get_settings()
    app = Celery("sms_worker", broker=redis_url(settings), include=["sms_worker.tasks.jobs"])
    app.conf.update(
        task_queues=[Queue(name, routing_key=name) for name in QUEUE_ORDER],
        task_default_queue="standard",
        task_routes={"sms_worker.sweep": {"queue": "housekeeping"}, "sms_worker.poll_statuses": {"queue": "housekeeping"}},
        broker_transport_options={"queue_order_strategy": "priority", "visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_ignore_result=True,
        task_acks_late=False,
        task_serializer="json",
        accept_content=["json"],
        beat_schedule={
            "sweep": {"task": "sms_worker.sweep", "schedule": settings.sweep_interval_seconds, "options": {"expires": settings.sweep_interval_seconds}},
            "poll-statuses": {"task": "sms_worker.poll_statuses", "schedule": settings.poll_interval_seconds, "options": {"expires": settings.poll_interval_seconds}},
        },
    )
    return app


celery_app = create_celery()


class CeleryWaker:
    """Publishes one dispatch wake-up per batch of pointers, on the queue of their priority."""

    def wake(self, batches_by_priority: dict[int, int]) -> None:
        with celery_app.producer_or_acquire() as producer:
            for priority, batches in batches_by_priority.items():
                for _ in range(batches):
                    celery_app.send_task(DISPATCH_TASK, queue=QUEUE_OF_PRIORITY[priority], producer=producer)

    def declare_queues(self) -> None:
        """Re-create kombu's routing keys, which vanish with everything else on a Redis flush."""
        with celery_app.connection_for_write() as connection:
            for queue in celery_app.conf.task_queues:
                queue(connection.default_channel).declare()

    def pending_wakeups(self) -> int:
        with celery_app.connection_for_read() as connection:
            channel = connection.default_channel
            return sum(channel.client.llen(QUEUE_OF_PRIORITY[p]) for p in QUEUE_OF_PRIORITY)
