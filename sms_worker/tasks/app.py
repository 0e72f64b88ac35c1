"""The Celery application.

Queues ``high``, ``housekeeping``, ``standard`` and ``low`` are read in that strict order, with
prefetch disabled, so a free worker always takes the most urgent wake-up (DESIGN-NOTES trap 3).
Wake-ups carry no message ids: the dispatch task pops the most urgent pointers itself, keeping
a share of every batch for standard and low so they never starve.
"""

from __future__ import annotations

import functools
import logging

from celery import Celery
from celery.signals import after_setup_logger
from celery.worker.consumer import Consumer
from kombu import Connection

from sms_worker.config import Settings, get_settings
from sms_worker.priority import Priority
from sms_worker.queues.wakeups import QUEUES
from sms_worker.runtime import redis_url

RECONNECT_EVERY = 0.25
"""Seconds between a worker's attempts to reach a broker that went away."""


class PromptConsumer(Consumer):
    """Celery's consumer, reconnecting to a lost broker every ``RECONNECT_EVERY`` seconds, and
    never brought down by the clean-up of the connection it lost.

    Celery's own retries wait 2, 4, 6... seconds apart: a Redis back after 2 s was found 4 s
    late, and nothing was sent meanwhile. Trying a few times a second costs one refused
    connection each while Redis is down.

    When Redis went away while a wake-up was delivered and its acknowledgement failed
    ("Couldn't ack"), closing the lost connection makes kombu restore the unacknowledged
    message through a transport whose client it has already dropped, and it raises
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``. Celery takes that for an
    unrecoverable error and stops the whole worker: its pool processes exited during a database
    outage with outcomes they could not write, and the reclaimer then rightly took their claims
    (issue 15: 28 ``unknown`` in a chaos run where no worker was killed). The connection is
    gone either way and a wake-up carries nothing, so such a failure is logged and the consumer
    reconnects as after any lost connection."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except Exception as error:  # noqa: BLE001 - anything here would stop the worker; the connection is already lost
            logging.getLogger("sms_worker.worker").warning(
                "consumer: closing the lost broker connection failed (%r); reconnecting all the same", error
            )

    def ensure_connected(self, conn: Connection) -> Connection:
        conn.ensure_connection = functools.partial(  # type: ignore[method-assign]  # for this call only, then deleted
            conn.ensure_connection, interval_start=0, interval_step=RECONNECT_EVERY, interval_max=RECONNECT_EVERY
        )
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection


class CeleryConfig:
    """Static settings; the ones read from ``Settings`` are added by :func:`create_celery`."""

    task_queues = QUEUES
    task_default_queue = Priority.STANDARD.queue
    task_routes = {"sms_worker.sweep": {"queue": "housekeeping"}, "sms_worker.poll_statuses": {"queue": "housekeeping"}}
    broker_transport_options = {"queue_order_strategy": "priority", "visibility_timeout": 3600}
    broker_connection_retry_on_startup = True
    worker_consumer = "sms_worker.tasks.app:PromptConsumer"
    worker_prefetch_multiplier = 1
    worker_disable_prefetch = True
    worker_send_task_events = True
    task_send_sent_event = False
    task_ignore_result = True
    task_acks_late = False
    task_serializer = "json"
    accept_content = ["json"]


def create_celery(settings: Settings | None = None) -> Celery:
    """An app whose settings-derived configuration is read when Celery first needs it, not at
    import: importing the tasks must not start an embedded Redis, and tests build apps on their
    own servers. The settings stay in a closure, out of Celery's (inspectable) configuration."""

    def current() -> Settings:
        return settings or get_settings()

    class Config(CeleryConfig):
        @property
        def broker_url(self) -> str:
            return redis_url(current())

        @property
        def beat_schedule(self) -> dict[str, dict]:
            sweep, poll = current().sweep_interval_seconds, current().poll_interval_seconds
            return {
                "sweep": {"task": "sms_worker.sweep", "schedule": sweep, "options": {"expires": sweep}},
                "poll-statuses": {"task": "sms_worker.poll_statuses", "schedule": poll, "options": {"expires": poll}},
            }

    app = Celery("sms_worker", include=["sms_worker.tasks.jobs", "sms_worker.tasks.process"])
    app.config_from_object(Config())
    return app


celery_app = create_celery()


@after_setup_logger.connect
def _quiet_http_logs(**_: object) -> None:
    """httpx logs every request at INFO: at a thousand messages a second that is the whole log."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
