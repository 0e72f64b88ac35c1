"""Routing rules: which accounts may carry a message, in the order to try them.

The first rule whose countries or prefixes match the recipient gives the preferred accounts,
and the default rule the fallbacks. Within each, weights spread messages by rendezvous
hashing on the message id: each account gets its share, and a message keeps its order of
accounts on every attempt, so a retry goes to the same account unless that one is out of
routing (breaker open, paused), and then to the next.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from functools import lru_cache

import phonenumbers

from sms_worker.providers.accounts import AccountSpec, ProvidersConfig


class Router:
    def __init__(self, providers: ProvidersConfig) -> None:
        self._rules = providers.rules
        self._default = providers.default
        self._accounts = providers.accounts

    def candidates(self, recipient: str, key: bytes) -> list[str]:
        """Account names for this recipient, preferred first; ``key`` (the message id) spreads by weight."""
        preferred: Mapping[str, float] = {}
        if self._rules:
            country = country_of(recipient)
            preferred = next((rule.weights for rule in self._rules if rule.matches(recipient, country)), {})
        ordered = _rendezvous(preferred, key) + _rendezvous(self._default, key)
        return list(dict.fromkeys(ordered))

    def refusal(self, account: str, recipient: str, sender: str | None) -> str | None:
        """Why ``account`` cannot carry a message from ``sender`` to ``recipient``, or None."""
        return sender_refusal(self._accounts[account], recipient, sender)


def sender_refusal(spec: AccountSpec, recipient: str, sender: str | None) -> str | None:
    if sender is None:
        return None
    if spec.senders is not None and sender not in spec.senders:
        return f"sender {sender!r} is not verified for account {spec.config.name}"
    if spec.alphanumeric_countries is not None and not sender.lstrip("+").isdigit():
        country = country_of(recipient)
        if country not in spec.alphanumeric_countries:
            return f"account {spec.config.name} may not use the alphanumeric sender {sender!r} towards {country or 'this destination'}"
    return None


@lru_cache(maxsize=65536)
def country_of(recipient: str) -> str | None:
    """ISO 3166 code of an E.164 number's country, or None.

    Most country codes belong to one country, and the code alone says which (a few µs per
    message less at enqueue); shared ones (+1, +7, +44...) need the whole number parsed."""
    digits = recipient.removeprefix("+")
    if not digits.isdigit():
        return None
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length]))
        if regions:
            if len(regions) == 1:
                return _geographic(regions[0])
            break
    try:
        return _geographic(phonenumbers.region_code_for_number(phonenumbers.parse(recipient, None)))
    except phonenumbers.NumberParseException:
        return None


def _geographic(region: str | None) -> str | None:
    """Non-geographic numbers (+800, +882...) have region "001": no country to route by."""
    return region if region and region not in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY) else None


def _rendezvous(weights: Mapping[str, float], key: bytes) -> list[str]:
    def score(name: str) -> float:
        digest = hashlib.blake2b(key + name.encode(), digest_size=8).digest()
        uniform = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
        return -math.log(uniform) / weights[name]

    return sorted(weights, key=score)
