"""Read-only views of messages for the CLI and the demo."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from sms_worker.config import get_settings
from sms_worker.db.engine import get_engine
from sms_worker.dispatch.sql import EVENTS, MESSAGES
from sms_worker.logs import mask_phone


def message_history(message_id: uuid.UUID, database_url: str | None = None) -> dict[str, Any] | None:
    engine = get_engine(database_url or get_settings().resolved_database_url)
    with engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).mappings().first()
        if row is None:
            return None
        events = conn.execute(select(EVENTS).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)).mappings().all()
    message = {key: value for key, value in row.items()}
    message["id"] = str(message["id"])
    message["recipient"] = mask_phone(message["recipient"])
    return {"message": message, "events": [{k: v for k, v in e.items() if k not in ("id", "message_id")} for e in events]}


def pipeline_stats() -> dict[str, Any]:
    """Backlog and outcomes at a glance: Flower shows Celery's wake-ups, not the pointer lists."""
    from sms_worker.queues import keys
    from sms_worker.queues.pointers import ready_lengths
    from sms_worker.runtime import build_runtime
    from sms_worker.validation import QUEUE_OF_PRIORITY

    rt = build_runtime()
    try:
        with rt.engine.connect() as conn:
            statuses = dict(conn.execute(select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)).all())
        return {
            "ready": {QUEUE_OF_PRIORITY[p]: n for p, n in ready_lengths(rt.redis).items()},
            "due": rt.redis.zcard(keys.DUE),
            "paused_accounts": {name: (rt.redis.get(keys.paused(name)) or b"").decode() for name in rt.accounts if rt.redis.exists(keys.paused(name))},
            "statuses": statuses,
        }
    finally:
        rt.close()
