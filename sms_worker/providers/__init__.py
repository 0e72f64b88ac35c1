"""Provider adapters: one protocol, one module per provider API."""

from sms_worker.providers.base import (
    Accepted,
    ErrorKind,
    OutboundMessage,
    Provider,
    ProviderError,
    StatusReport,
)

__all__ = ["Accepted", "ErrorKind", "OutboundMessage", "Provider", "ProviderError", "StatusReport"]
