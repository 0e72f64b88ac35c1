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
- **Concurrency.** Up to ``http_concurrency`` requests run at once; free slots are refilled once
  half of them are free, or sooner after a short stall, so slow calls never hold up the rest.
- **Outcomes as they come.** Finished calls go downstream (health, decide), which writes what
  they decide, every ``FLUSH_EVERY`` seconds and as soon as nothing else is running: a
  ``kill -9`` leaves unknown only what was in flight at that moment, or answered within the last
  ``FLUSH_EVERY``.
- **Arrivals meanwhile.** A batch that holds no high-priority message also takes high messages
  that arrive meanwhile and calls them next; and a batch whose calls are all started but held
  by a slow provider (one running longer than ``SLOW_CALL``) takes whatever arrives, by the fair
  shares, into its free slots. Either way at most a batch more, each prepared through the
  stages before this one, so a slow account does not delay messages for the others.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import timedelta
from typing import Any

from sms_worker.dispatch.batch import Absent, Answer, Batch, Defer, Found, Item, NearMatch, NotSent, Outcome, Skip, Started, Unanswered
from sms_worker.dispatch.lookup import Question, ask, question_of
from sms_worker.dispatch.pipeline import RETRY_AFTER_FAILURE, Downstream, Stage
from sms_worker.dispatch.policy import RetryPolicy
from sms_worker.dispatch.stages.requests import Departures, Unit, call, units_of
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
SLOW_CALL = 0.25
"""Seconds after which a call that holds up the end of a batch lets the batch take new arrivals."""

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
        self._requests = 0

    def close(self) -> None:
        self._calls.close()

    def process(self, batch: Batch, downstream: Downstream) -> None:
        questions: deque[Question] = deque()
        waiting: deque[Unit] = deque()
        self._sort(batch.in_play(), questions, waiting)
        running: dict[Future[list[Outcome]], tuple[Unit, float]] = {}
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
        running: dict[Future[list[Outcome]], tuple[Unit, float]],
        asking: dict[Future[Answer], tuple[Question, float]],
        look_for_high: bool,
    ) -> None:
        limit = self._rt.settings.http_concurrency
        group = max(1, limit // 2)
        departures = self._departures
        finished: list[Item] = []
        left = self._rt.settings.batch_size
        next_look = last_start = last_flush = 0.0
        while waiting or running or departures or questions or asking:
            now = time.monotonic()
            free = limit - len(running) - len(asking)
            if left and now >= next_look:
                next_look = now + LOOK_EVERY
                busy = [started for _, started in (*running.values(), *asking.values())]
                held_up = bool(busy) and not waiting and not departures and not questions and now - min(busy) >= SLOW_CALL
                if held_up or look_for_high:
                    left = self._take_arrivals(batch, questions, waiting, left, min(left, free if held_up else limit), held_up)
            for question in self._next_questions(questions, asking, free - len(departures)):
                self._requests += 1
                question.item.request = self._requests
                asking[self._rt.http_pool.submit(ask, self._rt, question)] = (question, now)
                free -= 1
            if waiting and free and not departures and (free >= group or now - last_start >= STALL or len(waiting) < group):
                last_start = now
                units = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                if not self._record_calling(batch, units, departures):
                    self._defer(batch, [*units, *waiting], "not called: the database is unreachable")
                    waiting.clear()
                    left = 0
            if departures and free:
                leaving, dropped = departures.ready(free)
                for n, unit in enumerate(leaving):
                    try:
                        running[self._rt.http_pool.submit(call, self._rt, unit)] = (unit, now)
                    except Exception:
                        departures.add(leaving[n:])  # not handed to a thread: not sent (_see_through)
                        raise
                for unit, not_sent in dropped:
                    finished += self._settle_outcomes(unit, [not_sent] * len(unit))
            if running or asking:
                futures: list[Future[Any]] = [*running, *asking]
                done, _ = wait(futures, timeout=STALL, return_when=FIRST_COMPLETED)
                for future in done:
                    if future in asking:
                        question, _ = asking.pop(future)
                        finished += self._answered(question.item, future.result(), waiting)
                    else:
                        unit, _ = running.pop(future)
                        finished += self._settle_outcomes(unit, future.result())
            elif departures:
                time.sleep(STALL)
            if finished and (not running or time.monotonic() - last_flush >= FLUSH_EVERY):
                downstream(finished)
                finished, last_flush = [], time.monotonic()

    def _see_through(
        self,
        running: dict[Future[list[Outcome]], tuple[Unit, float]],
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
                self._settle_outcomes(unit, future.result())
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

    def _take_arrivals(self, batch: Batch, questions: deque[Question], waiting: deque[Unit], left: int, limit: int, any_priority: bool) -> int:
        """Put up to ``limit`` new arrivals first; returns how many more the batch may take (0
        after a failure: it ends the look-out, not the batch)."""
        try:
            items = self._arrivals(limit, any_priority) if limit > 0 else []
        except Exception as error:  # noqa: BLE001 - the batch's own calls must still be seen through
            log.warning("stopped looking for arrivals in this batch: %s", describe_outage(error) or repr(error))
            return 0
        batch.extend(items)
        arrived_questions: deque[Question] = deque()
        arrived: deque[Unit] = deque()
        self._sort([item for item in items if item.disposition is None], arrived_questions, arrived)
        questions.extendleft(reversed(arrived_questions))
        waiting.extendleft(reversed(arrived))
        return left - len(items)

    def _record_calling(self, batch: Batch, units: list[Unit], departures: Departures) -> bool:
        """Record that these calls may start and queue them to depart; False if the database is away."""
        items = [item for unit in units for item in unit]
        try:
            started = self._mark_calling(items)
        except Exception as error:  # noqa: BLE001 - nothing is called that is not recorded as calling
            log.warning("could not record %d call(s) as started (%s); they are not made", len(items), describe_outage(error) or repr(error))
            return False
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
        return True

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


def _lost(asked_first: Absent | NearMatch | None) -> LostAttempt:
    """What the calling statement does to the lost attempt the provider was asked about first
    (an item's ``asked_first``): settle it (it had not the message), or, over a near match, make
    the message unsure since this attempt and a possible duplicate; nothing if it was not asked."""
    if isinstance(asked_first, Absent):
        return LostAttempt.SETTLED
    return LostAttempt.NEAR_MATCH if isinstance(asked_first, NearMatch) else LostAttempt.KEPT
