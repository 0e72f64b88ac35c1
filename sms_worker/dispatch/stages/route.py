"""Route: the account that carries each message, among those available now.

A message pinned to an account (``pinned_account``: the producer named it, or an ambiguous
attempt left the message there) goes there or waits for it. Otherwise the routing rules order
its accounts (:class:`~sms_worker.routing.Router`), each retry starting one further down the
list. An account is *available* unless the operator's pause (an account-wide fault) or its
circuit breaker keeps it out; a half-open breaker lets one message through as its probe, which
is given back in :meth:`Route.after` if that message is not called after all. A message no
account can carry (sender-ID or country rules, a character its wire format cannot carry, an
unconfigured account) is rejected with ``NO_ROUTE``; one whose accounts are all unavailable
waits, and is never handed to an available account that cannot carry it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Final, Protocol

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Batch, Defer, Finish, Item, Routed
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.policy import PAUSE_RECHECK
from sms_worker.lifecycle.status import Status
from sms_worker.providers.pause import paused_reason
from sms_worker.routing.breaker import UNLIMITED
from sms_worker.routing.router import Router
from sms_worker.runtime import Runtime

NO_ROUTE: Final = "NO_ROUTE"


class Availability(Protocol):
    """Which accounts may take messages now: what the route stage asks, once per account and batch."""

    def admit(self, account: str) -> int:
        """How many messages ``account`` may take: :data:`~sms_worker.routing.breaker.UNLIMITED`
        (its breaker is closed), 0 (the operator paused it, or its breaker is open) or 1 (the
        probe of its half-open breaker, taken by this answer)."""
        ...

    def release_probe(self, account: str) -> None:
        """Give back a probe :meth:`admit` let through that was not called after all."""
        ...


class AccountHealth:
    """:class:`Availability` as every worker shares it, in Redis: the operator's pause
    (:mod:`~sms_worker.providers.pause`) and each account's circuit breaker."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def admit(self, account: str) -> int:
        return 0 if paused_reason(self._rt.redis, account) is not None else self._rt.breaker(account).admit()

    def release_probe(self, account: str) -> None:
        self._rt.breaker(account).release_probe()


class Route(Stage):
    """``accounts``: the configured account names (read at each batch); ``recheck``: how soon a
    message whose accounts are all unavailable looks again."""

    def __init__(self, router: Router, accounts: Collection[str], availability: Availability, clock: Clock, recheck: timedelta) -> None:
        self._router = router
        self._accounts = accounts
        self._availability = availability
        self._clock = clock
        self._recheck = recheck

    @classmethod
    def of(cls, rt: Runtime) -> Route:
        """The stage of a worker: its router and accounts, availability in Redis, a message
        waiting for an account back within the pause's recheck or the breaker's cooldown."""
        recheck = min(PAUSE_RECHECK, timedelta(seconds=rt.settings.breaker_cooldown_seconds))
        return cls(rt.router, rt.accounts, AccountHealth(rt), rt.clock, recheck)

    def process(self, batch: Batch, downstream: Downstream) -> None:
        available = _Available(self._availability)
        recheck = self._clock.now() + self._recheck
        for item in batch.in_play():
            names = self._candidates(item)
            if isinstance(names, str):
                batch.settle(item, Finish(Status.REJECTED, f"no account may carry it: {names}", NO_ROUTE))
                continue
            chosen = next((name for name in names if available.take(name)), None)
            if chosen is None:
                batch.settle(item, Defer(recheck, f"no account available ({', '.join(names)}): paused, or circuit breaker open"))
                continue
            item.routed = Routed(chosen, chosen in available.probing)

    def after(self, batch: Batch) -> None:
        for item in batch:
            if item.probe and not item.called:
                self._availability.release_probe(item.account)

    def _candidates(self, item: Item) -> list[str] | str:
        """The accounts that can carry ``item`` (sender-ID rules, the characters of the wire
        format: :meth:`~sms_worker.routing.Router.eligible`) in the order to try them, or why none can."""
        row = item.row
        if row.pinned_account is not None and row.pinned_account not in self._accounts:
            return f"it is pinned to account {row.pinned_account!r}, which is not configured ({', '.join(sorted(self._accounts))})"
        names = [row.pinned_account] if row.pinned_account else self._router.candidates(row.recipient, item.id)
        turn = row.attempts % len(names)
        eligible = self._router.eligible(names[turn:] + names[:turn], row.recipient, row.sender, row.text)
        return eligible.accounts or eligible.reason()


class _Available:
    """Which accounts may take how many more messages in this batch: each account's
    :class:`Availability` is asked once. An operator's pause takes none; a breaker takes all
    (closed), none (open), or one probe (half-open)."""

    def __init__(self, availability: Availability) -> None:
        self._availability = availability
        self._left: dict[str, int] = {}
        self.probing: set[str] = set()

    def take(self, name: str) -> bool:
        if name not in self._left:
            admitted = self._availability.admit(name)
            self._left[name] = admitted
            if admitted == 1:
                self.probing.add(name)
        if self._left[name] == 0:
            return False
        if self._left[name] != UNLIMITED:
            self._left[name] -= 1
        return True
