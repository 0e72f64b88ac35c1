"""Which account carries a message: routing rules by destination, circuit breakers per account."""

from sms_worker.routing.breaker import Breaker, BreakerState
from sms_worker.routing.router import Router

__all__ = ["Breaker", "BreakerState", "Router"]
