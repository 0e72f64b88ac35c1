"""The message's tables as SQLAlchemy Core sees them: the row (``sms_message``) and its history
(``sms_message_event``). Anyone may read them; only :mod:`.write` and :mod:`.calls` write them."""

from __future__ import annotations

from sms_worker.db.models import Message, MessageEvent, table_of

MESSAGES = table_of(Message)
EVENTS = table_of(MessageEvent)
