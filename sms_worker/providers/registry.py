"""Provider accounts configured for this deployment, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from sms_worker.providers import dexatel, dt_a2p, session_key, telefoon, telekom_sk
from sms_worker.providers.accounts import AccountSpec, ProvidersConfig, ProvidersFileError
from sms_worker.providers.base import AccountConfig, Provider

FACTORIES: dict[str, Callable[[AccountConfig, httpx.Client], Provider]] = {
    "telekom-sk": telekom_sk.from_config,
    "dt-a2p": dt_a2p.from_config,
    "session-key": session_key.from_config,
    "telefoon": telefoon.from_config,
    "dexatel": dexatel.from_config,
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
        factory = FACTORIES.get(spec.config.type)
        if factory is None:
            raise ProvidersFileError(f"accounts.{name}.type: {spec.config.type!r} is not a provider type ({', '.join(sorted(FACTORIES))})")
        try:
            accounts[name] = Account(factory(spec.config, client), spec)
        except ValueError as error:
            raise ProvidersFileError(f"accounts.{name}: {error}") from None
    return accounts
