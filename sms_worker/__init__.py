"""sms_worker: asynchronous SMS dispatch on Celery and Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sms_worker.producer import MessageRequest, send_many, send_sms
    from sms_worker.validation import BatchRejected, InvalidField

__all__ = ["BatchRejected", "InvalidField", "MessageRequest", "send_many", "send_sms"]


def __getattr__(name: str) -> Any:
    """Import the producer on first use, so ``import sms_worker`` stays cheap for the CLI."""
    if name in ("MessageRequest", "send_many", "send_sms"):
        from sms_worker import producer

        return getattr(producer, name)
    if name in ("BatchRejected", "InvalidField"):
        from sms_worker import validation

        return getattr(validation, name)
    raise AttributeError(name)
