"""Every adapter sms_worker has, and the accounts configured for this deployment, each with its
adapter, built once per process.

The one module that imports the adapter modules (``tests/test_layering.py`` checks it): the rest
of the package sees an adapter through :class:`~sms_worker.providers.base.Adapter` and an
account's settings through :data:`AccountSettings`. Adding an API is its module (the account
model and the adapter), one member of :data:`_ANY_ACCOUNT` and one case in :func:`build_adapter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, assert_never, get_args

import httpx
from pydantic import Field

from sms_worker.providers.base import Adapter
from sms_worker.providers.dexatel import DexatelAccount, DexatelAdapter
from sms_worker.providers.dt_a2p import DtA2pAccount, DtA2pAdapter
from sms_worker.providers.schema import AccountBase
from sms_worker.providers.session_key import SessionKeyAccount, SessionKeyAdapter
from sms_worker.providers.telefoon import TelefoonAccount, TelefoonAdapter
from sms_worker.providers.telekom_sk import TelekomSkAccount, TelekomSkAdapter

if TYPE_CHECKING:
    from sms_worker.providers.accounts import ProvidersConfig

_ANY_ACCOUNT = TelekomSkAccount | DtA2pAccount | SessionKeyAccount | TelefoonAccount | DexatelAccount
"""Every adapter type's account model: adding an API adds its model here, and only here."""

AccountSettings = Annotated[_ANY_ACCOUNT, Field(discriminator="type")]
"""One account of any adapter type, told apart by its ``type`` (the providers file's
``[accounts.NAME]``, checked by :mod:`~sms_worker.providers.accounts`)."""

ACCOUNT_TYPES: dict[str, type[AccountBase]] = {get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(_ANY_ACCOUNT)}
"""Each ``type`` and its account model."""


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
