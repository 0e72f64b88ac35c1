"""Read-only views of messages for the CLI and the demo."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

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
