"""What an operator does to the configured accounts from a shell: name them, check them, put one
back in routing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sms_worker.providers.accounts import load_providers
from sms_worker.providers.pause import resume
from sms_worker.providers.registry import Account, build_accounts
from sms_worker.providers.transport import guarded_client
from sms_worker.validation import InvalidField

if TYPE_CHECKING:
    from sms_worker.config import Settings
    from sms_worker.runtime import Deployment


def require_accounts(configured: Collection[str], field: str, names: Iterable[str]) -> None:
    """Raise :class:`InvalidField` on ``field`` for the first of ``names`` that is not one of the
    ``configured`` accounts; its reason lists the configured ones."""
    for name in names:
        if name not in configured:
            raise InvalidField(field, f"{name!r} is not a configured account ({', '.join(sorted(configured))})")


@contextmanager
def opened_accounts(settings: Settings) -> Iterator[dict[str, Account]]:
    """The configured accounts with their adapters, on an HTTP client of their own, for calling
    the providers without dispatching (``sms-worker accounts check``): neither the database nor
    Redis is reached. The adapters and the client are closed when the block ends."""
    client = guarded_client(settings.http_timeout_seconds, settings.max_response_bytes)
    accounts = build_accounts(load_providers(settings), client)
    try:
        yield accounts
    finally:
        for account in accounts.values():
            account.adapter.close()
        client.close()


def resume_account(deployment: Deployment, name: str) -> list[str]:
    """Put account ``name`` back in routing: lift its pause and close its breaker. Returns what
    that changed, of ``["pause lifted", "breaker closed"]``; empty when it was already in routing.
    Raises :class:`InvalidField` on ``name`` for an account that is not configured."""
    require_accounts(deployment.accounts, "name", [name])
    breaker = deployment.breaker(name)
    was_open = breaker.state().state != "closed"
    breaker.reset()
    return [what for what, done in (("pause lifted", resume(deployment.redis, name)), ("breaker closed", was_open)) if done]
