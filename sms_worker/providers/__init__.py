"""Provider adapters: one contract (:class:`~sms_worker.providers.base.Adapter`), one module per
provider API, the providers file that configures accounts of them."""

from sms_worker.providers.base import Accepted, Adapter, DeliveryReceipt, OutboundMessage, SendOutcome
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError

__all__ = ["Accepted", "Adapter", "DeliveryReceipt", "ErrorKind", "Failure", "OutboundMessage", "ProviderError", "SendOutcome"]
