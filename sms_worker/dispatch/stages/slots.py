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
process's ceiling (``http_concurrency``; lowered for as long as the process is overloaded:
:meth:`Slots.handed_over`), less a few kept for each account with no work at the moment; when the accounts with work need more than that, each is given its need in order of
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
FIRST_GUESS = 0.2
"""The latency assumed for an account (seconds) until one of its calls has finished (its first
answer replaces it): a typical SMS API's, so a new process does not open its whole ceiling of
threads and connections at once."""
WEIGHT = 0.2
"""How much one finished call moves an account's measured latency (an exponentially weighted
mean: the last few dozen calls count)."""
LATE_HAND_OVER = 0.05
"""Seconds requests may wait for a thread once handed over, on the mean (:data:`WAIT_WEIGHT`),
before the process counts as overloaded: half the jitter an account's burst absorbs at
500 msg/s with a burst of 50 (:class:`~sms_worker.ratelimit.SendWindow`)."""
WAIT_WEIGHT = 0.05
"""How much one hand-over moves the mean wait (an exponentially weighted mean: about the last
twenty count). One late hand-over (the operating system ran another process for a moment)
is not overload; every hand-over late is. Cut on each late one, a process at 1 s of latency
spent most of its time below the calls its account needed."""
CUT = 0.7
"""What the ceiling in use is multiplied by when a hand-over was late (at most every
:data:`CUT_EVERY` seconds)."""
CUT_EVERY = 0.1
"""The least time between two cuts (seconds): the hand-overs already under way when the ceiling
was cut are as late as the one that cut it."""
GROWTH = 0.25
"""Slots the ceiling in use regains with each hand-over on time."""
LOWEST = 16
"""The ceiling in use never falls below this (or the configured ceiling, if lower)."""


@dataclass
class Slots:
    """Per-account limits on the calls in flight in one process; see the module docstring.

    ``rates``: each account's rate limit (messages or segments a second); ``ceiling``: the most
    calls in flight in the process, for every account together."""

    rates: Mapping[str, float]
    ceiling: int
    latency: dict[str, float] = field(default_factory=dict)
    """Each account's measured latency, seconds: from the moment a thread starts its call to
    the outcome."""
    in_use: float = 0.0
    """The ceiling in use: ``ceiling``, less while the process is overloaded (see :meth:`handed_over`)."""
    wait: float = 0.0
    """The mean wait of a request for its thread, seconds (see :meth:`handed_over`)."""
    last_cut: float = -math.inf

    def __post_init__(self) -> None:
        self.in_use = self.ceiling

    def observe(self, account: str, seconds: float) -> None:
        """One call of ``account`` took ``seconds`` once its thread started it."""
        known = self.latency.get(account)
        self.latency[account] = seconds if known is None else known + WEIGHT * (seconds - known)

    def handed_over(self, waited: float, now: float) -> None:
        """A request waited ``waited`` seconds for its thread (``now``: monotonic seconds).

        More calls in flight than the host's CPU can carry only make every call slower (threads
        wait for the interpreter), and a late hand-over is jitter between the send window and
        the provider that the burst must absorb. So the ceiling in use backs off like TCP's
        congestion window: cut by :data:`CUT` while the mean wait (:data:`WAIT_WEIGHT`) is
        longer than :data:`LATE_HAND_OVER`, regained :data:`GROWTH` slots per hand-over while
        it is not."""
        self.wait += WAIT_WEIGHT * (waited - self.wait)
        if self.wait > LATE_HAND_OVER:
            if now - self.last_cut >= CUT_EVERY:
                self.in_use = max(min(LOWEST, self.ceiling), self.in_use * CUT)
                self.last_cut = now
        else:
            self.in_use = min(self.ceiling, self.in_use + GROWTH)

    @property
    def limit(self) -> int:
        """The most calls in flight in the process now."""
        return int(self.in_use)

    def need(self, account: str) -> int:
        """The calls ``account`` needs in flight to reach its rate limit, with headroom."""
        latency = self.latency.get(account, FIRST_GUESS)
        return min(self.limit, FLOOR + math.ceil(self.rates[account] * latency * HEADROOM))

    def shares(self, accounts: Iterable[str]) -> dict[str, int]:
        """The slots of each of ``accounts`` (those with calls to make or in flight): each its
        need, unless together they need more than the ceiling less :data:`FLOOR` kept for each
        other account (so that one whose messages arrive finds slots at once, not once a slow
        account's calls are back; at most half the ceiling is kept); then max-min fair shares of
        that."""
        active = set(accounts)
        needs = sorted((self.need(account), account) for account in active)
        shares: dict[str, int] = {}
        kept = min(FLOOR * len(set(self.rates) - active), self.limit // 2)
        left = max(len(needs), self.limit - kept)
        for n, (need, account) in enumerate(needs):
            shares[account] = max(1, min(need, left // (len(needs) - n)))
            left -= shares[account]
        return shares
