"""Submit: the provider calls, concurrent, each one bounded, each outcome written as it comes.

- **Requests.** Messages that may travel together (a multi-recipient API, same text and
  sender) form one request; the rest go one per request.
- **Calling is recorded first.** Before a group of requests starts, one statement turns their
  rows from ``claimed`` to ``calling`` (and counts the attempt), fenced by the claim: a claim the
  recovery sweep took back is not called. After a crash, ``claimed`` means "never reached a
  provider" and ``calling`` "may have": the database, not Redis, knows which.
- **Concurrency.** Up to ``http_concurrency`` requests run at once in the process's pool; free
  slots are refilled once half of them are free (one statement marks the group), or sooner
  after a short stall, so slow calls never hold up the rest.
- **Bounds.** Each request waits for its place in the account's send window (the rate limit
  at departure), then runs under a deadline for the whole exchange
  (``http_timeout_seconds``, :func:`~sms_worker.providers.transport.deadline`), so a provider
  that answers slowly, or a byte at a time, holds its call no longer than that.
- **Outcomes as they come.** Finished calls go downstream (record, health) and are written
  every ``FLUSH_EVERY`` seconds and before each new group: a ``kill -9`` leaves unknown only
  what was in flight at that moment.
- **Arrivals meanwhile.** A batch that holds no high-priority message also takes high messages
  that arrive meanwhile and calls them next; and a batch whose calls are all started but held by
  a slow provider (one running longer than ``SLOW_CALL``) takes whatever arrives, by the fair
  shares, into its free slots. Either way at most a batch more, each prepared through the
  stages before this one, so a slow account does not delay messages for the others.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import timedelta

from sqlalchemy import func, update

from sms_worker.dispatch.batch import Batch, Defer, Item, NotSent, Outcome, Skip
from sms_worker.dispatch.ledger import describe_outage
from sms_worker.dispatch.pipeline import Downstream, Stage
from sms_worker.dispatch.sql import MESSAGES, add_events, event
from sms_worker.logs import get_logger, mask_phone
from sms_worker.providers.base import ErrorKind, ProviderError
from sms_worker.providers.transport import deadline
from sms_worker.ratelimit import SendWindow
from sms_worker.runtime import Runtime
from sms_worker.status import Status

log = get_logger("dispatch")
LOOK_EVERY = 0.01
"""Seconds between looks for urgent arrivals, and the longest a free slot waits for company."""
FLUSH_EVERY = 0.05
"""Seconds finished outcomes may wait to be written together."""
MAX_WINDOW_WAIT = 2.0
"""Seconds a request may wait for its place in the send window before it gives its claim back."""
SLOW_CALL = 0.25
"""Seconds after which a call that holds up the end of a batch lets the batch take new arrivals."""
HIGH = 3

Unit = list[Item]
"""Messages that travel in one request."""
Arrivals = Callable[[int, bool], list[Item]]
"""``(n, any_priority)``: pops up to n pointers (high ones only, or any by the fair shares),
prepares them, and returns every item it popped."""


class Submit(Stage):
    calls_out = True

    def __init__(self, rt: Runtime, arrivals: Arrivals) -> None:
        self._rt = rt
        self._arrivals = arrivals
        self._requests = 0

    def process(self, batch: Batch, downstream: Downstream) -> None:
        rt = self._rt
        limit = rt.settings.http_concurrency
        group = max(1, limit // 2)
        waiting = deque(self._units(batch.in_play()))
        running: dict[Future[list[Outcome]], Unit] = {}
        started: dict[Future[list[Outcome]], float] = {}
        finished: list[Item] = []
        look_for_high = not any(item.priority == HIGH for item in batch.in_play())
        left = rt.settings.batch_size
        next_look = last_start = last_flush = 0.0
        while waiting or running:
            now = time.monotonic()
            free = limit - len(running)
            if left and now >= next_look:
                next_look = now + LOOK_EVERY
                held_up = bool(running) and not waiting and now - min(started.values()) >= SLOW_CALL
                if held_up or look_for_high:
                    left = self._take_arrivals(batch, waiting, left, min(left, free if held_up else limit), held_up)
            if waiting and free and (free >= group or now - last_start >= LOOK_EVERY or len(waiting) < group):
                last_start = now
                if finished:
                    downstream(finished)
                    finished, last_flush = [], now
                units = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                if not self._start(batch, units, running):
                    self._defer(batch, [*units, *waiting], "not called: the database is unreachable")
                    waiting.clear()
                    left = 0
                started.update({future: now for future in running if future not in started})
            if running:
                done, _ = wait(running, timeout=LOOK_EVERY, return_when=FIRST_COMPLETED)
                for future in done:
                    unit = running.pop(future)
                    started.pop(future)
                    for item, outcome in zip(unit, future.result()):
                        item.outcome = outcome
                    finished += unit
            if finished and (not running or time.monotonic() - last_flush >= FLUSH_EVERY):
                downstream(finished)
                finished, last_flush = [], time.monotonic()

    def _units(self, items: list[Item]) -> list[Unit]:
        units: list[Unit] = []
        open_units: dict[tuple[str, Hashable], Unit] = {}
        for item in items:
            assert item.account is not None and item.message is not None
            adapter = self._rt.accounts[item.account].provider
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

    def _take_arrivals(self, batch: Batch, waiting: deque[Unit], left: int, limit: int, any_priority: bool) -> int:
        """Put up to ``limit`` new arrivals first; returns how many more the batch may take (0
        after a failure: it ends the look-out, not the batch)."""
        try:
            items = self._arrivals(limit, any_priority) if limit > 0 else []
        except Exception as error:  # noqa: BLE001 - the batch's own calls must still be seen through
            log.warning("stopped looking for arrivals in this batch: %s", describe_outage(error) or repr(error))
            return 0
        batch.extend(items)
        waiting.extendleft(reversed(self._units([item for item in items if item.disposition is None])))
        return left - len(items)

    def _start(self, batch: Batch, units: list[Unit], running: dict[Future[list[Outcome]], Unit]) -> bool:
        """Record that these calls may start, then start them; False if the database is away."""
        items = [item for unit in units for item in unit]
        try:
            started = self._mark_calling(items)
        except Exception as error:  # noqa: BLE001 - nothing is called that is not recorded as calling
            log.warning("could not record %d call(s) as started (%s); they are not made", len(items), describe_outage(error) or repr(error))
            return False
        for unit in units:
            for item in unit:
                if item.id not in started:
                    batch.settle(item, Skip("the claim was taken back before the call"))
            calling = [item for item in unit if item.id in started]
            if calling:
                self._requests += 1
                for item in calling:
                    item.request = self._requests
                running[self._rt.http_pool.submit(self._call, calling)] = calling
        return True

    def _mark_calling(self, items: list[Item]) -> set:
        rt = self._rt
        now = rt.clock.now()
        claims = {item.claim_id for item in items if item.claim_id is not None}
        statement = (
            update(MESSAGES)
            .where(MESSAGES.c.id.in_([item.id for item in items]), MESSAGES.c.status == Status.CLAIMED.value, MESSAGES.c.claim_id.in_(claims))
            .values(status=Status.CALLING.value, attempts=MESSAGES.c.attempts + 1, first_attempt_at=func.coalesce(MESSAGES.c.first_attempt_at, now),
                    last_attempt_at=now, updated_at=now)
            .returning(MESSAGES.c.id, MESSAGES.c.claim_id, MESSAGES.c.attempts, MESSAGES.c.first_attempt_at)
        )
        by_id = {item.id: item for item in items}
        with rt.engine.begin() as conn:
            rows = [row for row in conn.execute(statement) if row.claim_id == by_id[row.id].claim_id]
            add_events(conn, [event(row.id, now, Status.CALLING, f"attempt {row.attempts} via {by_id[row.id].account}") for row in rows])
        for row in rows:
            item = by_id[row.id]
            item.attempt, item.first_attempt_at = row.attempts, row.first_attempt_at
        return {row.id for row in rows}

    def _defer(self, batch: Batch, units: list[Unit], reason: str) -> None:
        until = self._rt.clock.now() + timedelta(seconds=1)
        for unit in units:
            for item in unit:
                batch.settle(item, Defer(until, reason))

    def _call(self, unit: Unit) -> list[Outcome]:
        """One request's outcomes, one per message: whatever happens, never an exception."""
        rt = self._rt
        name = unit[0].account or ""
        try:
            self._wait_turn(name, unit)
        except NotSent as not_sent:
            return [not_sent] * len(unit)
        adapter = rt.accounts[name].provider
        messages = [item.message for item in unit if item.message is not None]
        try:
            with deadline(rt.settings.http_timeout_seconds):
                if len(messages) == 1:
                    return [adapter.send(messages[0])]
                outcomes = adapter.send_many(messages)
            if len(outcomes) != len(unit):
                raise RuntimeError(f"send_many answered {len(outcomes)} outcomes for {len(unit)} messages")
            return list(outcomes)
        except ProviderError as error:
            return [error] * len(unit)
        except Exception as error:  # noqa: BLE001 - an adapter bug must not kill the batch or the worker
            log.exception("adapter %s crashed sending %d message(s), first to %s", name, len(unit), mask_phone(messages[0].recipient))
            return [ProviderError(ErrorKind.TRANSIENT, "ADAPTER_CRASH", f"{type(error).__name__}: {error}")] * len(unit)

    def _wait_turn(self, name: str, unit: Unit) -> None:
        """Take the request's place in the account's send window, waiting for it if need be."""
        rt = self._rt
        spec = rt.accounts[name]
        cost = sum(item.row.segments for item in unit) if rt.settings.rate_limit_unit == "parts" else len(unit)
        waited = 0.0
        try:
            window = SendWindow(rt.redis, name, spec.rate, spec.burst, rt.settings.rate_limit_headroom_seconds)
            while (pause := window.enter(cost)) > 0:
                if waited + pause > MAX_WINDOW_WAIT:
                    raise NotSent(f"not sent: account {name}'s send window stayed full", rt.clock.now() + timedelta(seconds=pause))
                time.sleep(pause)
                waited += pause
        except NotSent:
            raise
        except Exception as error:  # noqa: BLE001 - without the window the rate cannot be kept: do not send
            raise NotSent(f"not sent: {describe_outage(error) or repr(error)}", rt.clock.now() + timedelta(seconds=1)) from None
