"""The sandbox's knobs, passed in by whoever builds the app, so each test can shape its provider."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """How the emulated providers behave when no fault rule says otherwise.

    ``sent_after`` and ``delivered_after`` are seconds on the injected clock, counted from the
    moment a message is due (accepted, or its ``delivery_time``); they are short by default so
    a demo shows messages reaching DELIVERED without waiting.
    """

    sent_after: float = 0.3
    delivered_after: float = 0.6
    telekom_sk_tokens: frozenset[str] = frozenset({"sandbox-token"})
    telekom_sk_allowed_ips: frozenset[str] = frozenset({"127.0.0.1", "::1", "testclient"})
    telekom_sk_timezone: str = "Europe/Bratislava"
    post_status_callbacks: bool = False
    """Post Telefoon's per-message ``status_callback`` URLs. Off by default, so a sandbox never
    calls out to an address a test or a user merely wrote into a message."""
    telekom_sk_callback_url: str | None = None
    """The callback URL "defined in API key settings": where delivery statuses are posted for
    messages sent with ``callback`` true (the default). None: no callbacks."""
    dt_a2p_api_keys: frozenset[str] = frozenset({"sandbox-dt-key"})
    dt_a2p_balance: float = 1_000_000.0
    """Prepaid balance in EUR at start-up and after a reset."""
    dt_a2p_price_per_part: float = 0.075
    dt_a2p_verified_senders: frozenset[str] = frozenset({"+4915112345678", "+491701234567", "ACME"})
    dt_a2p_alphanumeric_countries: frozenset[str] = frozenset({"DE", "AT", "SK", "CZ", "FR", "GB", "IT", "ES", "NL", "PL"})
    """Destination countries (ISO 3166 alpha-2) where an alphanumeric sender ID is allowed."""
    session_key_users: tuple[tuple[str, str], ...] = (("sandbox-user", "sandbox-pass"),)
    """(username, password) pairs that may log in."""
    session_key_credits: int = 1_000_000
    telefoon_api_keys: frozenset[str] = frozenset({"sandbox-telefoon-key"})
    dexatel_api_keys: frozenset[str] = frozenset({"sandbox-dexatel-key"})
    dexatel_balance: float = 1_000_000.0
    """Dexatel's prepaid balance in EUR at start-up and after a reset."""
    dexatel_webhook_url: str | None = None
    """The account's webhook URL: delivery reports are posted there once final. None: no webhooks."""

    def __post_init__(self) -> None:
        if not 0 <= self.sent_after <= self.delivered_after:
            raise ValueError("need 0 <= sent_after <= delivered_after")
        ZoneInfo(self.telekom_sk_timezone)  # fail here, not on the first scheduled message
