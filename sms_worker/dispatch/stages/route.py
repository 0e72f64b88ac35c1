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

from datetime import timedelta
from typing import Final

from sms_worker.dispatch.batch import Batch, Defer, Finish, Item
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.policy import PAUSE_RECHECK
from sms_worker.lifecycle.status import Status
from sms_worker.providers.pause import paused_reason
from sms_worker.routing.breaker import UNLIMITED
from sms_worker.runtime import Runtime

NO_ROUTE: Final = "NO_ROUTE"


class Route(Stage):
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def process(self, batch: Batch, downstream: Downstream) -> None:
        rt = self._rt
        available = _Availability(rt)
        recheck = rt.clock.now() + min(PAUSE_RECHECK, timedelta(seconds=rt.settings.breaker_cooldown_seconds))
        for item in batch.in_play():
            names = self._candidates(item)
            if isinstance(names, str):
                batch.settle(item, Finish(Status.REJECTED, f"no account may carry it: {names}", NO_ROUTE))
                continue
            chosen = next((name for name in names if available.take(name)), None)
            if chosen is None:
                batch.settle(item, Defer(recheck, f"no account available ({', '.join(names)}): paused, or circuit breaker open"))
                continue
            item.account = chosen
            item.probe = chosen in available.probing

    def after(self, batch: Batch) -> None:
        for item in batch:
            if item.probe and not item.called:
                self._rt.breaker(item.account or "").release_probe()

    def _candidates(self, item: Item) -> list[str] | str:
        """The accounts that can carry ``item`` (sender-ID rules, the characters of the wire
        format: :meth:`~sms_worker.routing.Router.carriers`) in the order to try them, or why none can."""
        rt, row = self._rt, item.row
        if row.pinned_account is not None and row.pinned_account not in rt.accounts:
            return f"it is pinned to account {row.pinned_account!r}, which is not configured ({', '.join(sorted(rt.accounts))})"
        names = [row.pinned_account] if row.pinned_account else rt.router.candidates(row.recipient, item.id)
        turn = row.attempts % len(names)
        carriers = rt.router.carriers(names[turn:] + names[:turn], row.recipient, row.sender, row.text)
        return carriers.accounts or carriers.reason()


class _Availability:
    """Which accounts may take how many more messages in this batch: Redis is asked once per
    account. An operator's pause takes none; a breaker takes all (closed), none (open), or one
    probe (half-open)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._left: dict[str, int] = {}
        self.probing: set[str] = set()

    def take(self, name: str) -> bool:
        if name not in self._left:
            admitted = 0 if paused_reason(self._rt.redis, name) is not None else self._rt.breaker(name).admit()
            self._left[name] = admitted
            if admitted == 1:
                self.probing.add(name)
        if self._left[name] == 0:
            return False
        if self._left[name] != UNLIMITED:
            self._left[name] -= 1
        return True
