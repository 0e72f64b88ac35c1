"""Routing rules: which accounts may carry a message, in the order to try them.

The first rule whose countries or prefixes match the recipient gives the preferred accounts,
and the default rule the fallbacks. Within each, weights spread messages by rendezvous
hashing on the message id: each account gets its share, and a message keeps its order of
accounts on every attempt. The dispatcher starts each retry one account further down that
order, and skips accounts out of routing (breaker open, paused).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping

from sms_worker.addresses import country_of, sender_refusal
from sms_worker.providers.accounts import ProvidersConfig


class Router:
    def __init__(self, providers: ProvidersConfig) -> None:
        self._rules = providers.routes
        self._default = providers.default
        self._accounts = providers.accounts

    def candidates(self, recipient: str, message_id: uuid.UUID) -> list[str]:
        """Account names for this recipient, preferred first; the message id spreads messages by weight."""
        key = message_id.bytes
        preferred: Mapping[str, float] = {}
        if self._rules:
            country = country_of(recipient)
            preferred = next((rule.accounts for rule in self._rules if rule.matches(recipient, country)), {})
        ordered = _rendezvous(preferred, key) + _rendezvous(self._default, key)
        return list(dict.fromkeys(ordered))

    def refusal(self, account: str, recipient: str, sender: str | None) -> str | None:
        """Why ``account`` cannot carry a message from ``sender`` to ``recipient``, or None."""
        spec = self._accounts[account]
        refused = sender_refusal(sender, recipient, senders=spec.senders, alphanumeric_countries=spec.alphanumeric_countries)
        return f"{refused.reason} for account {account}" if refused else None


def _rendezvous(weights: Mapping[str, float], key: bytes) -> list[str]:
    def score(name: str) -> float:
        digest = hashlib.blake2b(key + name.encode(), digest_size=8).digest()
        uniform = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
        return -math.log(uniform) / weights[name]

    return sorted(weights, key=score)
