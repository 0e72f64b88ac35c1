"""sms_worker: asynchronous SMS dispatch on Celery and Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sms_worker.errors import NotMigrated, OutcomeUnknown, StoreUnavailable
    from sms_worker.producer import MessageRequest, send_many, send_many_result, send_sms, send_sms_result
    from sms_worker.send_result import SendResult
    from sms_worker.validation import BatchRejected, InvalidField
    from sms_worker.views import MessageHistory, message_status

__all__ = [
    "BatchRejected",
    "InvalidField",
    "MessageHistory",
    "MessageRequest",
    "NotMigrated",
    "OutcomeUnknown",
    "SendResult",
    "StoreUnavailable",
    "message_status",
    "send_many",
    "send_many_result",
    "send_sms",
    "send_sms_result",
]
_HOMES = {
    "sms_worker.producer": ("MessageRequest", "send_many", "send_many_result", "send_sms", "send_sms_result"),
    "sms_worker.validation": ("BatchRejected", "InvalidField"),
    "sms_worker.errors": ("NotMigrated", "OutcomeUnknown", "StoreUnavailable"),
    "sms_worker.send_result": ("SendResult",),
    "sms_worker.views": ("MessageHistory", "message_status"),
}


def __getattr__(name: str) -> Any:
    """Import the producer on first use, so ``import sms_worker`` stays cheap for the CLI."""
    import importlib

    for module, names in _HOMES.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(name)
