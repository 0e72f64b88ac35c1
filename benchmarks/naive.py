"""The naive baseline: the design every SMS tutorial starts with.

One Celery task per message, published with ``.delay()``; one ORM insert per message
(SQLModel ``Session.add`` + commit of an ``sms_worker.db.models.Message`` row); in the task one
blocking ``httpx.post`` to the sandbox's Telekom SK ``send_message`` (token per request) and one
ORM update. Plain Celery defaults otherwise: one queue, prefork, prefetch multiplier 4.

Configured like sms_worker, from the environment (so the same ``Stack.child_env`` serves both):
``SMS_WORKER_REDIS_URL`` (broker), ``SMS_WORKER_DATABASE_URL``, ``SMS_WORKER_TELEKOM_SK_URL``,
``NAIVE_RATE_LIMIT`` (Celery ``rate_limit`` of ``naive.send_limited``, default ``100/s``) and
``NAIVE_HTTP`` (``client``, the default: one blocking POST per task on a keep-alive
``httpx.Client`` made once per worker process; ``post``: the module-level ``httpx.post``, which
builds a new client and TLS context per call, about 26 ms of CPU here, and so is 4x slower; the
default is the stronger baseline, so the ratios are not flattered by it).

Worker: ``celery -A benchmarks.naive worker -c 2`` (run from the project root).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from celery import Celery
from sqlalchemy import Engine
from sqlmodel import Session

from sms_worker.db.engine import get_engine
from sms_worker.db.models import Message

TOKEN = "sandbox-token"

app = Celery("naive")
app.conf.update(
    broker_url=os.environ.get("SMS_WORKER_REDIS_URL"),
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
)


def configure(broker_url: str, database_url: str, sandbox_url: str) -> None:
    """For the benchmark process, which publishes (and inserts) without the worker's environment.

    May be called again for another Redis: the connection and producer pools are dropped, or
    ``.delay()`` would go on publishing to the previous broker.
    """
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app.conf.broker_url = broker_url
    os.environ["SMS_WORKER_DATABASE_URL"] = database_url
    os.environ["SMS_WORKER_TELEKOM_SK_URL"] = f"{sandbox_url}/telekom-sk"


def engine() -> Engine:
    return get_engine(os.environ["SMS_WORKER_DATABASE_URL"])


_client: tuple[int, httpx.Client] | None = None


def _post(url: str, body: dict) -> httpx.Response:
    global _client
    if os.environ.get("NAIVE_HTTP", "client") == "post":
        return httpx.post(url, json=body, timeout=10)
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), httpx.Client(timeout=10))
    return _client[1].post(url, json=body)


def _deliver(message_id: str, to: str, text: str) -> str:
    url = os.environ["SMS_WORKER_TELEKOM_SK_URL"].rstrip("/") + "/json/send_message"
    response = _post(url, {"token": TOKEN, "to": to.removeprefix("+"), "text": text})
    entries = response.json().get("messages") or [{}]
    entry = entries[0]
    now = datetime.now(UTC)
    with Session(engine()) as session:
        message = session.get(Message, uuid.UUID(hex=message_id))
        message.attempts += 1
        message.last_attempt_at = now
        message.updated_at = now
        if entry.get("status") == "success":
            message.status = "submitted"
            message.provider_message_id = str(entry["message_id"])
        else:
            message.status = "retrying"
            message.error_code = str(entry.get("code") or response.status_code)
        session.add(message)
        session.commit()
        return message.status


@app.task(name="naive.send")
def send(message_id: str, to: str, text: str) -> str:
    return _deliver(message_id, to, text)


@app.task(name="naive.send_limited", rate_limit=os.environ.get("NAIVE_RATE_LIMIT", "100/s"))
def send_limited(message_id: str, to: str, text: str) -> str:
    return _deliver(message_id, to, text)


def enqueue(to: str, text: str, *, priority: int = 2, limited: bool = False) -> str:
    """The naive producer: insert the row (one ORM commit), then one ``.delay()``."""
    now = datetime.now(UTC)
    message_id = uuid.uuid4()
    message = Message(
        id=message_id,
        recipient=to,
        text=text,
        encoding="GSM-7",
        segments=1,
        priority=priority,
        account="telekom-sk",
        status="queued",
        send_after=now,
        valid_until=now + timedelta(days=1),
        created_at=now,
        updated_at=now,
    )
    with Session(engine()) as session:
        session.add(message)
        session.commit()
    (send_limited if limited else send).delay(message_id.hex, to, text)
    return message_id.hex
