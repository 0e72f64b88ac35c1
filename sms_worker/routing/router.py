"""Routing rules: which accounts may carry a message, in the order to try them.

The first rule whose countries or prefixes match the recipient gives the preferred accounts,
and the default rule the fallbacks. Within each, weights spread messages by rendezvous
hashing on the message id: each account gets its share, and a message keeps its order of
accounts on every attempt. The dispatcher starts each retry one account further down that
order, and skips accounts out of routing (breaker open, paused).

Of those, only accounts that can carry the message are used: each account's
:class:`~sms_worker.providers.eligibility.Eligibility` (its sender-ID rules, the characters its wire
format carries) is asked by :meth:`Router.eligible`, at enqueue and again at dispatch.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sms_worker.addresses import country_of
from sms_worker.providers.accounts import ProvidersConfig
from sms_worker.providers.eligibility import Refusal


@dataclass(frozen=True, slots=True)
class Eligible:
    """Accounts sorted by whether they can carry one message: ``accounts`` can, in the order
    given; ``refusals`` say why each of the others cannot, in the same order."""

    accounts: list[str]
    refusals: list[Refusal]

    def reason(self) -> str:
        """Why none of them can carry it, every account's refusal in one line."""
        return "; ".join(str(refusal) for refusal in self.refusals) or "no account"


class Router:
    def __init__(self, providers: ProvidersConfig) -> None:
        self._rules = providers.routes
        self._default = providers.default
        self._eligibility = {name: spec.eligibility() for name, spec in providers.accounts.items()}

    def candidates(self, recipient: str, message_id: uuid.UUID) -> list[str]:
        """Account names for this recipient, preferred first; the message id spreads messages by weight."""
        key = message_id.bytes
        preferred: Mapping[str, float] = {}
        if self._rules:
            country = country_of(recipient)
            preferred = next((rule.accounts for rule in self._rules if rule.matches(recipient, country)), {})
        ordered = _rendezvous(preferred, key) + _rendezvous(self._default, key)
        return list(dict.fromkeys(ordered))

    def refusal(self, account: str, recipient: str, sender: str | None, text: str) -> Refusal | None:
        """Why ``account`` cannot carry ``text`` from ``sender`` to ``recipient``, or None."""
        return self._eligibility[account].refusal(account, recipient, sender, text)

    def eligible(self, accounts: Sequence[str], recipient: str, sender: str | None, text: str) -> Eligible:
        """``accounts`` (configured ones, in the order to try them) sorted by whether each can
        carry ``text`` from ``sender`` to ``recipient``."""
        able, refusals = [], []
        for account in accounts:
            refused = self.refusal(account, recipient, sender, text)
            if refused is None:
                able.append(account)
            else:
                refusals.append(refused)
        return Eligible(able, refusals)


def _rendezvous(weights: Mapping[str, float], key: bytes) -> list[str]:
    def score(name: str) -> float:
        digest = hashlib.blake2b(key + name.encode(), digest_size=8).digest()
        uniform = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
        return -math.log(uniform) / weights[name]

    return sorted(weights, key=score)
