"""What an operator does to the configured accounts from a shell: name them, put one back in routing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sms_worker.providers.pause import resume
from sms_worker.validation import InvalidField

if TYPE_CHECKING:
    from sms_worker.runtime import Runtime


def require_accounts(rt: Runtime, field: str, names: Iterable[str]) -> None:
    """Raise :class:`InvalidField` on ``field`` for the first of ``names`` that is not a
    configured account; its reason lists the configured ones."""
    for name in names:
        if name not in rt.accounts:
            raise InvalidField(field, f"{name!r} is not a configured account ({', '.join(sorted(rt.accounts))})")


def resume_account(rt: Runtime, name: str) -> list[str]:
    """Put account ``name`` back in routing: lift its pause and close its breaker. Returns what
    that changed, of ``["pause lifted", "breaker closed"]``; empty when it was already in routing.
    Raises :class:`InvalidField` on ``name`` for an account that is not configured."""
    require_accounts(rt, "name", [name])
    breaker = rt.breaker(name)
    was_open = breaker.state().state != "closed"
    breaker.reset()
    return [what for what, done in (("pause lifted", resume(rt.redis, name)), ("breaker closed", was_open)) if done]
