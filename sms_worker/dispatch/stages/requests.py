"""Provider requests for the submit stage: grouping messages into requests, letting each depart
within its account's send window, and making the call under its deadline.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from sms_worker.dispatch.batch import Item, NotSent, Outcome
from sms_worker.logs import get_logger, mask_phone
from sms_worker.outages import describe_outage
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.providers.transport import deadline
from sms_worker.ratelimit import SendWindow
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
MAX_WINDOW_WAIT = 2.0
"""Seconds a request may wait for its place in the send window before its message goes back."""
HAND_OVER = timedelta(seconds=1)
"""Allowed for a request's hand-over to a thread once its place in the send window is taken."""
LATEST_DEPARTURE = timedelta(seconds=MAX_WINDOW_WAIT) + HAND_OVER
"""The latest a request leaves after its call was recorded as started (:attr:`~sms_worker.dispatch.batch.Item.call`, our
clock). :func:`call` refuses to make it later, so the time in which a lost attempt may have
reached the provider is bounded: its start, this, and the exchange's deadline
(:func:`~sms_worker.dispatch.lookup.window_of` searches that window)."""
AHEAD = 64
"""Most places taken ahead in an account's send window while it is at most half full."""

Unit = list[Item]
"""Messages that travel in one request."""
ADAPTER_CRASH: Final = "ADAPTER_CRASH"
"""The code of a request whose adapter raised instead of answering outcomes (ambiguous)."""


def units_of(rt: Runtime, items: list[Item]) -> list[Unit]:
    """One request per message, or per group of messages its API takes at once (same account,
    same :meth:`~sms_worker.providers.base.Adapter.group_key`, at most ``max_recipients``)."""
    units: list[Unit] = []
    open_units: dict[tuple[str, Hashable], Unit] = {}
    for item in items:
        adapter = rt.accounts[item.account].adapter
        if adapter.max_recipients <= 1:
            units.append([item])
            continue
        key = (item.account, adapter.group_key(item.message))
        unit = open_units.get(key)
        if unit is None or len(unit) >= adapter.max_recipients:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(item)
    return units


@dataclass
class _Departure:
    unit: Unit
    since: float
    not_before: float = 0.0


@dataclass
class _Credit:
    places: int = 0
    until: float = 0.0


@dataclass
class Departures:
    """Requests whose calls are recorded, waiting for their place in the send window.

    Each account's window is asked once for all its requests that are due (one Lua call), in
    the dispatcher's thread, the moment before they are handed to the pool: what is left between
    the window and the provider is the hand-over to a thread. A request refused its place waits
    here, holding no thread, until the window says it fits; past ``MAX_WINDOW_WAIT`` (or if Redis
    cannot be asked) it is not sent and its message comes back (:class:`NotSent`).

    While an account's window is at most half full, places are taken ahead for the next
    requests (up to ``AHEAD``, as many as the account's rate fills in ``burst / (2 * rate)``
    seconds), and spent here without asking Redis until that time is up: an account far from its
    limit costs a round trip per few dozen requests, one at its limit a round trip per group."""

    rt: Runtime
    departing: list[_Departure] = field(default_factory=list)
    credit: dict[str, _Credit] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.departing)

    def add(self, units: list[Unit]) -> None:
        now = time.monotonic()
        self.departing += [_Departure(unit, now) for unit in units]

    def accounts(self) -> set[str]:
        """The accounts with requests still departing."""
        return {entry.unit[0].account for entry in self.departing}

    def drain(self) -> list[Unit]:
        """Every request still departing, taken out (its batch stopped: none of them leaves)."""
        units = [entry.unit for entry in self.departing]
        self.departing = []
        return units

    def ready(self, slots: int) -> tuple[list[Unit], list[tuple[Unit, NotSent]]]:
        """Up to ``slots`` requests that may leave now, and those that will not leave at all."""
        now = time.monotonic()
        due: dict[str, list[_Departure]] = defaultdict(list)
        taken = 0
        for entry in self.departing:
            if taken >= slots:
                break
            if entry.not_before <= now:
                due[entry.unit[0].account].append(entry)
                taken += 1
        leaving: list[Unit] = []
        dropped: list[tuple[Unit, NotSent]] = []
        for account, entries in due.items():
            entries = self._spend_credit(account, entries, leaving, now)
            if not entries:
                continue
            spec = self.rt.accounts[account]
            lead = min(0.5, spec.burst / (2 * spec.rate))
            try:
                grant = SendWindow(self.rt.redis, account, spec.rate).admit(
                    [self._cost(entry.unit) for entry in entries], ahead=min(AHEAD, math.floor(spec.rate * lead))
                )
            except Exception as error:  # noqa: BLE001 - without the window the rate cannot be kept: do not send
                until = self.rt.clock.now() + timedelta(seconds=1)
                dropped += [(entry.unit, NotSent(f"not sent: {describe_outage(error) or repr(error)}", until)) for entry in entries]
                continue
            leaving += [entry.unit for entry in entries[: grant.granted]]
            self.credit[account] = _Credit(grant.ahead, now + lead)
            for entry in entries[grant.granted :]:
                if now + grant.retry_after - entry.since > MAX_WINDOW_WAIT:
                    until = self.rt.clock.now() + timedelta(seconds=grant.retry_after)
                    dropped.append((entry.unit, NotSent(f"not sent: account {account}'s send window stayed full", until)))
                else:
                    entry.not_before = now + grant.retry_after
        gone = {id(unit) for unit in leaving} | {id(unit) for unit, _ in dropped}
        self.departing = [entry for entry in self.departing if id(entry.unit) not in gone]
        return leaving, dropped

    def _spend_credit(self, account: str, entries: list[_Departure], leaving: list[Unit], now: float) -> list[_Departure]:
        """Let requests leave on places taken ahead, in order; returns the ones still to ask for."""
        credit = self.credit.get(account)
        if credit is None or credit.until < now:
            return entries
        for n, entry in enumerate(entries):
            cost = self._cost(entry.unit)
            if cost > credit.places:
                return entries[n:]
            credit.places -= cost
            leaving.append(entry.unit)
        return []

    def _cost(self, unit: Unit) -> int:
        return sum(item.row.segments for item in unit) if self.rt.settings.rate_limit_unit == "segments" else len(unit)


def call(rt: Runtime, unit: Unit) -> list[Outcome]:
    """One request's outcomes, one per message: whatever happens, never an exception. The whole
    adapter call (a re-login included) ends within ``http_timeout_seconds``. An adapter that
    raises (a bug) or answers the wrong number of outcomes crashed: the request may have gone
    out, so the failure is ambiguous (``ADAPTER_CRASH``). A request that would leave later than
    :data:`LATEST_DEPARTURE` after its call was recorded (a busy pool, a starved process) is
    not made: :class:`NotSent`, its messages back to wait."""
    now = rt.clock.now()
    late = now - min(item.call.at for item in unit)
    if late > LATEST_DEPARTURE:
        reason = (
            f"not sent: the call would have left {late.total_seconds():.1f} s after it was recorded as started, later than the "
            f"{LATEST_DEPARTURE.total_seconds():.0f} s a question about a lost attempt allows for"
        )
        return [NotSent(reason, now)] * len(unit)
    adapter = rt.accounts[unit[0].account].adapter
    messages = [item.message for item in unit]
    try:
        with deadline(rt.settings.http_timeout_seconds):
            outcomes = adapter.send(messages)
        if len(outcomes) != len(unit):
            raise RuntimeError(f"send answered {len(outcomes)} outcomes for {len(unit)} messages")
        return list(outcomes)
    except Exception as error:
        log.exception("adapter %s crashed sending %d message(s), first to %s", adapter.name, len(unit), mask_phone(messages[0].recipient))
        return [Failure(ErrorKind.AMBIGUOUS, ADAPTER_CRASH, f"{type(error).__name__}: {error}")] * len(unit)
