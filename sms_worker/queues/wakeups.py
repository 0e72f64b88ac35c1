"""Wake-ups: the Celery messages that tell a worker to dispatch a batch, published with kombu.

A wake-up carries no message ids: it is the task named :data:`DISPATCH_TASK`, with no
arguments, on its priority's queue; the task (``sms_worker.tasks.jobs``) pops the most urgent
pointers itself. Publishing one needs the broker, not Celery: the producer (a web application
calling :func:`~sms_worker.producer.send_sms`) imports neither Celery nor the task modules.
The message is Celery's task message, protocol 2 (headers, ``[args, kwargs, embed]`` as JSON),
as ``app.send_task`` writes it (`Celery's message protocol
<https://docs.celeryq.dev/en/stable/internals/protocol.html>`_).

The queues are declared here, and the Celery app reads them (``tasks.app.CeleryConfig``), so a
wake-up and the worker that takes it agree on one list.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping

from kombu import Connection, Exchange, Queue
from kombu.pools import producers

from sms_worker.priority import Priority

QUEUE_ORDER = (Priority.HIGH.queue, "housekeeping", Priority.STANDARD.queue, Priority.LOW.queue)
"""The order a worker reads its queues in, most urgent first (DESIGN-NOTES trap 3)."""
QUEUES = [Queue(name, Exchange(Priority.STANDARD.queue), routing_key=name) for name in QUEUE_ORDER]
"""Each queue bound to Celery's default exchange, which is named as its default queue."""
DISPATCH_TASK = "sms_worker.dispatch"
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_max": 1, "interval_step": 0.2}
"""Celery's default ``task_publish_retry_policy``: a broker that drops one connection is tried again."""


class CeleryWaker:
    """Tops the wake-ups waiting on a priority's queue up to one per batch of pointers, and no
    higher than ``max_pending``: a wake-up pops whatever is most urgent, so those already waiting
    serve new pointers too, and a running dispatch task that finds a full batch tops them up
    again (``keep_awake``). A huge enqueue costs a few Celery messages, not thousands.

    ``broker_url`` is the Redis that Celery's workers read (:func:`~sms_worker.runtime.redis_url`);
    connections come from kombu's producer pool, shared by the threads of a process."""

    def __init__(self, broker_url: str, max_pending: int = 32) -> None:
        self._connection = Connection(broker_url)
        self.max_pending = max_pending

    def wake(self, batches_by_priority: Mapping[Priority, int]) -> None:
        with producers[self._connection].acquire(block=True) as producer:
            client = producer.channel.client
            for priority, batches in batches_by_priority.items():
                queue = priority.queue
                for _ in range(min(batches, self.max_pending) - client.llen(queue)):
                    task_id = str(uuid.uuid4())
                    producer.publish(
                        [[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
                        routing_key=queue,
                        serializer="json",
                        headers=_headers(task_id),
                        correlation_id=task_id,
                        retry=True,
                        retry_policy=_PUBLISH_RETRY,
                    )

    def declare_queues(self) -> None:
        """Re-create kombu's routing keys, which vanish with everything else on a Redis flush."""
        with self._connection.clone() as connection:
            for queue in QUEUES:
                queue(connection.default_channel).declare()


def _headers(task_id: str) -> dict[str, object]:
    """A task message's headers for a wake-up: the task's name and id, nothing else set."""
    return {
        "lang": "py",
        "task": DISPATCH_TASK,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": "{}",
        "origin": f"gen{os.getpid()}@{socket.gethostname()}",
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
