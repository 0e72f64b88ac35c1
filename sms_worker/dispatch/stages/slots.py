"""How many provider calls each account may have in flight in one worker process.

An account sends at most ``rate`` messages a second, each call holds its slot for the API's
latency, so by Little's law it needs ``rate × latency`` calls in flight to reach its limit
(200 ms at 500 msg/s: 100 calls; 2 s: 1,000). :class:`Slots` measures each account's latency
as its calls finish and gives it that many slots with headroom, whatever the latency: no
operator computes it. The sizing follows the adaptive concurrency limits of Netflix's
``concurrency-limits`` and Envoy's adaptive concurrency filter (limits from measured round-trip
times; ``../shared/DESIGN-NOTES.md``), with the rate limit as the target instead of a latency
gradient: the send window (:class:`~sms_worker.ratelimit.SendWindow`) keeps the rate exact, so
slots beyond the need only wait, and the need is all this sizes.

Every process may carry an account's whole need: a process whose batch is ending (its last
calls draining) leaves room that another process fills at once. Slots are bounded by the
process's ceiling (``http_concurrency``), less a few kept for each account with no work at the
moment; when the accounts with work need more than that, each is given its need in order of
need, smallest first, and an equal share of what is left at most (max-min fairness), so a slow
account never takes the slots a fast one needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

HEADROOM = 1.5
"""Slots per call the rate and latency need: latency varies from call to call, and a slot is
freed only once the outcome is handed back."""
FLOOR = 4
"""Slots every account has, whatever its rate and latency: enough to measure its latency."""
FIRST_GUESS = 1.0
"""The latency assumed for an account (seconds) until one of its calls has finished."""
WEIGHT = 0.2
"""How much one finished call moves an account's measured latency (an exponentially weighted
mean: the last few dozen calls count)."""


@dataclass
class Slots:
    """Per-account limits on the calls in flight in one process; see the module docstring.

    ``rates``: each account's rate limit (messages or segments a second); ``ceiling``: the most
    calls in flight in the process, for every account together."""

    rates: Mapping[str, float]
    ceiling: int
    latency: dict[str, float] = field(default_factory=dict)
    """Each account's measured latency, seconds: from a request's hand-over to a thread to its
    outcome."""

    def observe(self, account: str, seconds: float) -> None:
        """One call of ``account`` held its slot ``seconds``."""
        known = self.latency.get(account)
        self.latency[account] = seconds if known is None else known + WEIGHT * (seconds - known)

    def need(self, account: str) -> int:
        """The calls ``account`` needs in flight to reach its rate limit, with headroom."""
        latency = self.latency.get(account, FIRST_GUESS)
        return min(self.ceiling, FLOOR + math.ceil(self.rates[account] * latency * HEADROOM))

    def shares(self, accounts: Iterable[str]) -> dict[str, int]:
        """The slots of each of ``accounts`` (those with calls to make or in flight): each its
        need, unless together they need more than the ceiling less :data:`FLOOR` kept for each
        other account (so that one whose messages arrive finds slots at once, not once a slow
        account's calls are back); then max-min fair shares of that."""
        active = set(accounts)
        needs = sorted((self.need(account), account) for account in active)
        shares: dict[str, int] = {}
        left = max(len(needs), self.ceiling - FLOOR * len(set(self.rates) - active))
        for n, (need, account) in enumerate(needs):
            shares[account] = max(1, min(need, left // (len(needs) - n)))
            left -= shares[account]
        return shares
