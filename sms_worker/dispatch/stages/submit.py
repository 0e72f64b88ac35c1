"""Submit: the provider calls, concurrent, each one bounded, each outcome written as it comes.

- **Asked first, where the provider can say.** A message unsure since an ambiguous attempt, on
  an account whose API can be asked, is looked for in the provider's listing before any call
  (:mod:`~sms_worker.dispatch.lookup`), in the same pool and slots as the calls: a question, not
  an attempt. Found: adopted; not there: on to be called like the rest. A question never takes
  the slot of a call already recorded as started, and one message to a recipient is asked about
  at a time on an account.
- **Calling is recorded first.** Before a group of requests starts, one statement turns their
  rows from ``claimed`` to ``calling`` and counts the attempt, fenced by the claim: a claim the
  recovery sweep took back is not called (:class:`~sms_worker.lifecycle.calls.CallRecord`). After a crash, ``claimed`` means "never reached a
  provider" and ``calling`` "may have": the database, not Redis, knows which.
- **Departures paced.** A recorded request then takes its place in its account's send window
  and is handed to the process's pool (:class:`~.requests.Departures`); it runs under a
  deadline for the whole exchange (:func:`~.requests.call`), and is not made at all if it would
  leave later than :data:`~.requests.LATEST_DEPARTURE` after it was recorded.
- **Concurrency sized by the work.** Each account may have as many calls in flight as its
  rate limit and its measured latency need (:class:`~.slots.Slots`: 200 ms at 500 msg/s is a
  hundred), within the process's ceiling (``http_concurrency``), shared so that a slow account
  never takes the slots a fast one needs. Free slots are filled at once when every waiting
  request can go, else once half of them can, or after a short stall.
- **Outcomes as they come.** Finished calls go downstream (health, decide), which writes what
  they decide, every ``FLUSH_EVERY`` seconds and as soon as nothing else is running: a
  ``kill -9`` leaves unknown only what was in flight at that moment, or answered within the last
  ``FLUSH_EVERY``.
- **Arrivals meanwhile.** While none of its requests can start now (fewer than a batch wait
  for their account's slots or send window), a batch takes what arrives, by the fair shares,
  each look about what the last one could call (an account at its rate limit defers most of
  what is taken), for about ``batch_seconds``: slow providers are kept busy without a new
  batch per round trip. Then the batch ends once its calls are back, while another process's
  batch takes over: each may carry an account's whole need, and each batch's span is drawn
  between half and one and a half ``batch_seconds``, so that processes started together do not
  end their batches together. Meanwhile, every ``LOOK_EVERY``, a batch with no high-priority
  message waiting (once it takes no more arrivals: one that began with none) looks for high
  messages only, and calls them next. Arrivals are prepared
  by the stages before this one.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from queue import Empty, SimpleQueue
from typing import Any

from sms_worker.dispatch.batch import Absent, Answer, Batch, Defer, Found, Item, NearMatch, NotSent, Outcome, Skip, Started, Unanswered
from sms_worker.dispatch.lookup import Question, ask, question_of
from sms_worker.dispatch.pipeline import RETRY_AFTER_FAILURE, Downstream, Stage
from sms_worker.dispatch.policy import RetryPolicy
from sms_worker.dispatch.stages.requests import Departures, Unit, call, units_of
from sms_worker.dispatch.stages.slots import Slots
from sms_worker.lifecycle.calls import CallRecord
from sms_worker.lifecycle.changes import CallStarted, LostAttempt
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.priority import Priority
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
LOOK_EVERY = 0.01
"""Seconds between looks for arrivals (each look is one Redis round trip)."""
STALL = 0.01
"""The longest a free slot waits for company before it is refilled alone."""
FLUSH_EVERY = 0.05
"""Seconds finished outcomes may wait to be written together."""
TAKE_EVERY = 0.025
"""Seconds between looks that take arrivals into free slots: each look costs a few round trips
to Redis and the database whatever it takes, so a batch takes what the rate lets it send in a
few looks a second rather than in a hundred."""
IDLE_LOOK = 0.2
"""The longest between looks for arrivals after looks that found none."""
SMALLEST_TAKE = 4
"""The fewest arrivals a look takes."""

Arrivals = Callable[[int, bool], list[Item]]
"""``(n, any_priority)``: pops up to n pointers (high ones only, or any by the fair shares),
prepares them, and returns every item it popped."""


class Submit(Stage):
    calls_out = True

    def __init__(self, rt: Runtime, arrivals: Arrivals) -> None:
        self._rt = rt
        self._arrivals = arrivals
        self._calls = CallRecord(rt.engine)
        self._departures = Departures(rt)
        self._policy = RetryPolicy.of(rt.settings, rt.accounts)
        self._slots = Slots({name: spec.rate for name, spec in rt.accounts.items()}, rt.settings.http_concurrency)
        self._requests = 0

    def close(self) -> None:
        self._calls.close()

    def process(self, batch: Batch, downstream: Downstream) -> None:
        questions: deque[Question] = deque()
        waiting: deque[Unit] = deque()
        self._sort(batch.in_play(), questions, waiting)
        running: dict[Future[_Called], tuple[Unit, float]] = {}
        asking: dict[Future[Answer], tuple[Question, float]] = {}
        look_for_high = not any(item.priority == Priority.HIGH for item in batch.in_play())
        try:
            self._calls_of(batch, downstream, questions, waiting, running, asking, look_for_high)
        except Exception as error:
            self._see_through(running, asking, self._departures, error)
            raise

    def _calls_of(
        self,
        batch: Batch,
        downstream: Downstream,
        questions: deque[Question],
        waiting: deque[Unit],
        running: dict[Future[_Called], tuple[Unit, float]],
        asking: dict[Future[Answer], tuple[Question, float]],
        look_for_high: bool,
    ) -> None:
        settings = self._rt.settings
        departures = self._departures
        done: SimpleQueue[Future[Any]] = SimpleQueue()
        busy: Counter[str] = Counter()
        intake = _Intake(settings.batch_size, time.monotonic() + settings.batch_seconds * random.uniform(0.5, 1.5))
        finished: list[Item] = []
        last_start = last_flush = 0.0
        while waiting or running or departures or questions or asking:
            now = time.monotonic()
            free = self._slots.limit - len(running) - len(asking)
            shares = self._slots.shares([*+busy, *(unit[0].account for unit in waiting), *(question.item.account for question in questions)])
            startable = self._startable(waiting, busy, shares, free, departures.accounts())
            take = min(intake.taking, free, settings.batch_size - len(waiting) - len(departures))
            if intake.takes(now) and now >= intake.next_look and not startable and not questions and take > 0:
                intake.looked(now, take, self._take_arrivals(batch, questions, waiting, take, True))
                startable = self._startable(waiting, busy, shares, free, departures.accounts())
            elif now >= intake.next_high and (_no_high(waiting) if intake.takes(now) else look_for_high):
                intake.looked_for_high(now, self._take_arrivals(batch, questions, waiting, min(settings.batch_size, self._slots.limit), False))
                startable = self._startable(waiting, busy, shares, free, departures.accounts())
            for question in self._next_questions(questions, asking, free - len(departures)):
                self._requests += 1
                question.item.request = self._requests
                question_future = self._rt.http_pool.submit(ask, self._rt, question)
                asking[question_future] = (question, now)
                question_future.add_done_callback(done.put)
                free -= 1
            if startable and (len(startable) >= max(1, min(free, len(waiting)) // 2) or now - last_start >= STALL):
                last_start = now
                chosen = {id(unit) for unit in startable}
                kept = [unit for unit in waiting if id(unit) not in chosen]
                waiting.clear()
                waiting.extend(kept)
                calling = self._record_calling(batch, startable, departures)
                if calling is None:
                    self._defer(batch, [*startable, *waiting], "not called: the database is unreachable")
                    waiting.clear()
                    intake.stop()
                busy.update(unit[0].account for unit in calling or [])
            if departures and free:
                leaving, dropped = departures.ready(free)
                for n, unit in enumerate(leaving):
                    try:
                        call_future = self._rt.http_pool.submit(_timed_call, self._rt, unit)
                    except Exception:
                        departures.add(leaving[n:])  # not handed to a thread: not sent (_see_through)
                        raise
                    running[call_future] = (unit, time.monotonic())
                    call_future.add_done_callback(done.put)
                for unit, not_sent in dropped:
                    busy[unit[0].account] -= 1
                    finished += self._settle_outcomes(unit, [not_sent] * len(unit))
            if running or asking:
                for future in _finished(done):
                    if future in asking:
                        question, _ = asking.pop(future)
                        finished += self._answered(question.item, future.result(), waiting)
                    else:
                        unit, handed = running.pop(future)
                        called = future.result()
                        busy[unit[0].account] -= 1
                        self._slots.handed_over(called.began - handed, called.began)
                        if not isinstance(called.outcomes[0], NotSent):
                            self._slots.observe(unit[0].account, called.ended - called.began)
                        finished += self._settle_outcomes(unit, called.outcomes)
            elif departures:
                time.sleep(STALL)
            if finished and (not running or time.monotonic() - last_flush >= FLUSH_EVERY):
                downstream(finished)
                finished, last_flush = [], time.monotonic()

    @staticmethod
    def _startable(waiting: deque[Unit], busy: Counter[str], shares: dict[str, int], free: int, departing: set[str]) -> list[Unit]:
        """The requests that may be recorded as calling now, in order, up to ``free``: each
        account's up to its share of slots (:class:`~.slots.Slots`) with what it has in flight,
        and none of an account whose recorded requests have not all left yet (a recorded call
        must leave within :data:`~.requests.LATEST_DEPARTURE`)."""
        room = {account: share - busy[account] for account, share in shares.items() if account not in departing}
        chosen: list[Unit] = []
        for unit in waiting:
            if len(chosen) >= free:
                break
            account = unit[0].account
            if room.get(account, 0) > 0:
                room[account] -= 1
                chosen.append(unit)
        return chosen

    def _see_through(
        self,
        running: dict[Future[_Called], tuple[Unit, float]],
        asking: dict[Future[Answer], tuple[Question, float]],
        departures: Departures,
        error: Exception,
    ) -> None:
        """The batch stops on ``error``: what became of each call recorded as started is kept
        for the stage that decides outcomes (the driver has it settle them). A call that never
        left (still departing, or not handed to a thread) is :class:`NotSent`: its attempt does
        not count. A call in flight is waited for (each is bounded by its deadline), so its
        answer is recorded as answered and never mistaken for an ambiguous attempt; only a call
        whose outcome cannot be had stays without one, and is ambiguous (``DISPATCH_STOPPED``).
        A question in flight is waited for too: a copy it found (and adopted) or its failure is
        decided as answered; a message it would send again waits for the next batch, unsent."""
        until = self._rt.clock.now() + RETRY_AFTER_FAILURE
        not_sent = NotSent(f"not sent: dispatch stopped ({describe_outage(error) or type(error).__name__})", until)
        for unit in departures.drain():
            self._settle_outcomes(unit, [not_sent] * len(unit))
        for future, (unit, _) in running.items():
            try:
                self._settle_outcomes(unit, future.result().outcomes)
            except Exception:  # its outcome cannot be had: it stays ambiguous
                log.exception("a provider call of a stopped batch gave no outcome")
        for question_future, (question, _) in asking.items():
            if question_future.cancelled():
                continue  # it asked nothing
            answer = question_future.result()  # ask() never raises
            if isinstance(answer, Found | Unanswered):
                question.item.outcome = answer

    def _sort(self, items: list[Item], questions: deque[Question], waiting: deque[Unit]) -> None:
        """Unsure messages whose account can be asked go to ``questions`` (asked before any
        call: :mod:`~sms_worker.dispatch.lookup`); the rest, in requests, to ``waiting``."""
        sending = []
        for item in items:
            question = question_of(self._rt, item)
            if question is None:
                sending.append(item)
            else:
                questions.append(question)
        waiting.extend(units_of(self._rt, sending))

    @staticmethod
    def _next_questions(questions: deque[Question], asking: dict[Future[Answer], tuple[Question, float]], slots: int) -> list[Question]:
        """Up to ``slots`` questions to ask now, taken out of ``questions``: the slots of calls
        already recorded as started are not theirs (a question may hold its slot for the whole
        look-up deadline, and a call must leave within
        :data:`~.requests.LATEST_DEPARTURE`), and one message to a recipient is asked about at a
        time on an account, so that two alike do not both adopt one copy (what the first adopts
        is held when the second is asked: :func:`~sms_worker.lifecycle.write.adopt`)."""
        busy = {(question.item.account, question.item.row.recipient) for question, _ in asking.values()}
        chosen: list[Question] = []
        for question in questions:
            if len(chosen) >= slots:
                break
            to = (question.item.account, question.item.row.recipient)
            if to not in busy:
                busy.add(to)
                chosen.append(question)
        for question in chosen:
            questions.remove(question)
        return chosen

    def _answered(self, item: Item, answer: Answer, waiting: deque[Unit]) -> list[Item]:
        """Where a question's answer takes ``item``: settled (adopted, unanswered, or a near
        match its policy gives up on), or on to be sent again (it had not the message, or a near
        match its policy resends). Returns the items settled."""
        if isinstance(answer, Absent) or (isinstance(answer, NearMatch) and self._policy.policy_of(item.account, item.row.on_ambiguous) == "resend"):
            item.asked_first = answer
            waiting.extend(units_of(self._rt, [item]))
            return []
        item.outcome = answer
        return [item]

    def _settle_outcomes(self, unit: Unit, outcomes: list[Outcome]) -> Unit:
        for item, outcome in zip(unit, outcomes):
            item.outcome = outcome
        return unit

    def _take_arrivals(self, batch: Batch, questions: deque[Question], waiting: deque[Unit], limit: int, any_priority: bool) -> _Look | None:
        """Put up to ``limit`` new arrivals first; returns how many were popped and how many of
        them are to be called (the stages before this one settled the rest: deferred, finished),
        None after a failure."""
        try:
            items = self._arrivals(limit, any_priority) if limit > 0 else []
        except Exception as error:  # noqa: BLE001 - the batch's own calls must still be seen through
            log.warning("stopped looking for arrivals in this batch: %s", describe_outage(error) or repr(error))
            return None
        batch.extend(items)
        arrived_questions: deque[Question] = deque()
        arrived: deque[Unit] = deque()
        in_play = [item for item in items if item.disposition is None]
        self._sort(in_play, arrived_questions, arrived)
        questions.extendleft(reversed(arrived_questions))
        waiting.extendleft(reversed(arrived))
        return _Look(len(items), len(in_play))

    def _record_calling(self, batch: Batch, units: list[Unit], departures: Departures) -> list[Unit] | None:
        """Record that these calls may start and queue them to depart; returns the requests
        recorded (a claim taken back meanwhile is skipped), None if the database is away."""
        items = [item for unit in units for item in unit]
        try:
            started = self._mark_calling(items)
        except Exception as error:  # noqa: BLE001 - nothing is called that is not recorded as calling
            log.warning("could not record %d call(s) as started (%s); they are not made", len(items), describe_outage(error) or repr(error))
            return None
        calling_units = []
        for unit in units:
            for item in unit:
                if item.id not in started:
                    batch.settle(item, Skip("the claim was taken back before the call"))
            calling = [item for item in unit if item.id in started]
            if calling:
                self._requests += 1
                for item in calling:
                    item.request = self._requests
                calling_units.append(calling)
        departures.add(calling_units)
        return calling_units

    def _mark_calling(self, items: list[Item]) -> set[uuid.UUID]:
        """One statement turns the group's rows to ``calling``, fenced by their claims (one more
        for messages sent again after their provider was asked); returns the ids it turned (all
        of them, unless the sweep took a claim back meanwhile)."""
        rt = self._rt
        now = rt.clock.now()
        started: set[uuid.UUID] = set()
        for lost in {_lost(item.asked_first) for item in items}:
            alike = [item for item in items if _lost(item.asked_first) is lost]
            claims = tuple({item.claim for item in alike})
            started |= self._calls.start(CallStarted(tuple(item.id for item in alike), claims, now, lost))
        for item in items:
            if item.id in started:
                item.started = Started(item.row.attempts + 1, now, item.row.first_attempt_at or now)
        return started

    def _defer(self, batch: Batch, units: list[Unit], reason: str) -> None:
        until = self._rt.clock.now() + timedelta(seconds=1)
        for unit in units:
            for item in unit:
                batch.settle(item, Defer(until, reason))


@dataclass(frozen=True, slots=True)
class _Called:
    """A request's outcomes, and when its thread began and ended the call (monotonic seconds)."""

    began: float
    ended: float
    outcomes: list[Outcome]


def _timed_call(rt: Runtime, unit: Unit) -> _Called:
    """:func:`~.requests.call`, timed from the moment its thread starts it."""
    began = time.monotonic()
    outcomes = call(rt, unit)
    return _Called(began, time.monotonic(), outcomes)


@dataclass(frozen=True, slots=True)
class _Look:
    """What one look for arrivals found: pointers popped, and messages among them to call."""

    popped: int
    to_call: int


@dataclass
class _Intake:
    """How many arrivals a batch takes at each look, and when it looks next.

    A look takes at most ``batch_size``: twice what the last one took if it could call all of
    it, else a quarter more than it could call. Where an account's rate limit defers most of
    what is taken (:class:`~.pace.Pace`), popping a full batch at every look would only move
    pointers back and forth. Looks come every :data:`TAKE_EVERY`; a look that finds no
    arrivals at all waits twice as long for the next, up to :data:`IDLE_LOOK`. Between them,
    every :data:`LOOK_EVERY`, a batch looks for high-priority messages only: while it takes
    arrivals, whenever none waits in it; after (and in a batch that takes none), if it began
    with none, as a batch of its own."""

    batch_size: int
    until: float
    """When the batch stops taking arrivals (monotonic seconds)."""
    taking: int = 0
    interval: float = 0.0
    next_look: float = 0.0
    next_high: float = 0.0

    def __post_init__(self) -> None:
        self.taking = self.batch_size

    def takes(self, now: float) -> bool:
        """Whether the batch still takes arrivals of any priority (high ones it always looks for)."""
        return now < self.until

    def looked(self, now: float, asked: int, look: _Look | None) -> None:
        """A look asked for ``asked`` arrivals and found ``look`` (None: it failed)."""
        if look is None:
            self.stop()
            return
        self.taking = min(self.batch_size, 2 * self.taking) if look.to_call >= asked else max(SMALLEST_TAKE, look.to_call + look.to_call // 4)
        self.interval = TAKE_EVERY if look.popped else min(IDLE_LOOK, 2 * max(TAKE_EVERY, self.interval))
        self.next_look = now + self.interval

    def looked_for_high(self, now: float, look: _Look | None) -> None:
        """A look for high-priority arrivals only found ``look`` (None: it failed)."""
        if look is None:
            self.stop()
            return
        self.next_high = now + LOOK_EVERY

    def stop(self) -> None:
        """No more looks for this batch, high ones included (a look failed: Redis or the
        database is away)."""
        self.until = 0.0
        self.next_high = math.inf


def _no_high(waiting: deque[Unit]) -> bool:
    return not any(unit[0].priority == Priority.HIGH for unit in waiting)


def _finished(done: SimpleQueue[Future[Any]]) -> list[Future[Any]]:
    """The calls and questions finished: waits up to :data:`STALL` for the first."""
    try:
        first = done.get(timeout=STALL)
    except Empty:
        return []
    futures = [first]
    while True:
        try:
            futures.append(done.get_nowait())
        except Empty:
            return futures


def _lost(asked_first: Absent | NearMatch | None) -> LostAttempt:
    """What the calling statement does to the lost attempt the provider was asked about first
    (an item's ``asked_first``): whether it had no copy or a near match, the message is unsure
    since this attempt and a possible duplicate (:attr:`LostAttempt.RESENT`); nothing if it was
    not asked."""
    return LostAttempt.KEPT if asked_first is None else LostAttempt.RESENT
