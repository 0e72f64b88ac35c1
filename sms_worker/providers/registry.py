"""Provider accounts configured for this deployment, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from sms_worker.providers import dexatel, dt_a2p, session_key, telefoon, telekom_sk
from sms_worker.providers.accounts import AccountSpec, ProvidersConfig, ProvidersFileError
from sms_worker.providers.base import AccountConfig, Provider


@dataclass(frozen=True, slots=True)
class ProviderType:
    """How to build one type's adapter, and which keys its account table may hold, so a typo
    in the providers file is an error naming the key instead of a default silently used."""

    build: Callable[[AccountConfig, httpx.Client], Provider]
    credentials: frozenset[str]
    options: frozenset[str] = frozenset()


ROUTING_OPTIONS = frozenset({"senders", "alphanumeric_countries"})
"""Read by routing for every type; an adapter may read them too."""

TYPES: dict[str, ProviderType] = {
    "telekom-sk": ProviderType(telekom_sk.from_config, frozenset({"token"}), frozenset({"transport", "use_session"})),
    "dt-a2p": ProviderType(dt_a2p.from_config, frozenset({"api_key"}), frozenset({"default_sender"})),
    "session-key": ProviderType(session_key.from_config, frozenset({"username", "password"}), frozenset({"quality", "max_recipients", "timezone"})),
    "telefoon": ProviderType(telefoon.from_config, frozenset({"api_key"}), frozenset({"default_sender", "sender_id", "status_callback", "gdpr_consent_ref"})),
    "dexatel": ProviderType(dexatel.from_config, frozenset({"api_key"}), frozenset({"default_sender"})),
}


@dataclass(frozen=True, slots=True)
class Account:
    provider: Provider
    spec: AccountSpec

    @property
    def rate(self) -> float:
        return self.spec.rate

    @property
    def burst(self) -> int:
        return self.spec.burst


def build_accounts(providers: ProvidersConfig, client: httpx.Client) -> dict[str, Account]:
    accounts = {}
    for name, spec in providers.accounts.items():
        config = spec.config
        kind = TYPES.get(config.type)
        if kind is None:
            raise ProvidersFileError(f"accounts.{name}.type: {config.type!r} is not a provider type ({', '.join(sorted(TYPES))})")
        for key in sorted(set(config.credentials) - kind.credentials):
            raise ProvidersFileError(f"accounts.{name}.{key}: type {config.type} authenticates with {', '.join(sorted(kind.credentials))}")
        for key in sorted(set(config.options) - kind.options - ROUTING_OPTIONS):
            known = ", ".join(sorted(kind.options | ROUTING_OPTIONS))
            raise ProvidersFileError(f"accounts.{name}.{key}: is not an option of type {config.type} (known: {known})")
        try:
            accounts[name] = Account(kind.build(config, client), spec)
        except ValueError as error:
            raise ProvidersFileError(f"accounts.{name}: {error}") from None
    return accounts
