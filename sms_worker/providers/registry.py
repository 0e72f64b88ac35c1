"""Provider accounts configured for this deployment, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from sms_worker.config import Settings
from sms_worker.providers.base import Provider
from sms_worker.providers.telekom_sk import JsonCodec, TelekomSKProvider, XmlCodec


@dataclass(frozen=True, slots=True)
class Account:
    provider: Provider
    rate: float
    burst: int


def build_accounts(settings: Settings, client: httpx.Client) -> dict[str, Account]:
    codec = XmlCodec() if settings.telekom_sk_transport == "xml" else JsonCodec()
    telekom = TelekomSKProvider(
        "telekom-sk",
        settings.telekom_sk_url,
        settings.telekom_sk_token.get_secret_value(),
        client,
        use_session=settings.telekom_sk_use_session,
        codec=codec,
    )
    return {telekom.name: Account(telekom, settings.telekom_sk_rate, settings.telekom_sk_burst)}
