"""Provider accounts configured for this deployment, each with its adapter, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import httpx

from sms_worker.providers.accounts import AccountSettings, ProvidersConfig
from sms_worker.providers.base import Adapter
from sms_worker.providers.dexatel import DexatelAccount, DexatelAdapter
from sms_worker.providers.dt_a2p import DtA2pAccount, DtA2pAdapter
from sms_worker.providers.session_key import SessionKeyAccount, SessionKeyAdapter
from sms_worker.providers.telefoon import TelefoonAccount, TelefoonAdapter
from sms_worker.providers.telekom_sk import TelekomSkAccount, TelekomSkAdapter


@dataclass(frozen=True, slots=True)
class Account:
    """One configured account: its adapter, and its settings as the providers file gave them."""

    adapter: Adapter
    spec: AccountSettings

    @property
    def rate(self) -> float:
        return self.spec.rate

    @property
    def burst(self) -> int:
        return self.spec.burst


def build_adapter(name: str, spec: AccountSettings, client: httpx.Client) -> Adapter:
    """The adapter of ``spec``'s type for the account ``name``, calling out through ``client``."""
    match spec:
        case TelekomSkAccount():
            return TelekomSkAdapter(name, spec, client)
        case DtA2pAccount():
            return DtA2pAdapter(name, spec, client)
        case SessionKeyAccount():
            return SessionKeyAdapter(name, spec, client)
        case TelefoonAccount():
            return TelefoonAdapter(name, spec, client)
        case DexatelAccount():
            return DexatelAdapter(name, spec, client)
        case _:
            assert_never(spec)


def build_accounts(providers: ProvidersConfig, client: httpx.Client) -> dict[str, Account]:
    return {name: Account(build_adapter(name, spec, client), spec) for name, spec in providers.accounts.items()}
