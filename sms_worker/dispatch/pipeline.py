"""The pipeline driver: stages in order, each one's after-step in reverse, writes at checkpoints.

A stage is a small class with two hooks, after dramatiq's middleware:

- ``process(batch, downstream)`` looks at ``batch.in_play()`` and gives each item a disposition
  or leaves it in play for the next stage. A stage that works in pieces (submit: calls finish at
  different times) hands each finished piece to ``downstream``, which runs the stages after it on
  that piece at once and writes what they decided.
- ``after(batch)`` runs once the batch has left every stage, in reverse order of the stages that
  ran, whatever happened: a stage gives back there what it took for items that no later stage
  used (a breaker probe, rate tokens, a claim). No stage undoes another's work.

The driver writes what the stages settled (:class:`~.ledger.Ledger`) before a stage that calls
out (``calls_out``), after every downstream piece, and at the end. If a stage raises, the after-steps
still run and no pointer is lost: an item whose call was recorded as started is settled by the
stage that decides outcomes (``decides_outcomes``), what the provider answered as it answered,
a call whose outcome was not seen as an ambiguous attempt (:data:`DISPATCH_STOPPED`); the other
items still in play are deferred for a moment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import ClassVar, Final

from sms_worker.clock import Clock
from sms_worker.dispatch.batch import Absent, Batch, Defer, Disposition, Finish, Found, Item, NotSent
from sms_worker.dispatch.ledger import Ledger
from sms_worker.lifecycle.status import Status
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.providers.base import Accepted
from sms_worker.providers.failures import ErrorKind, Failure

log = get_logger("dispatch")
RETRY_AFTER_FAILURE = timedelta(seconds=1)
"""How soon messages come back after a batch failed before their calls (Redis or the database
away): about a second, so sending resumes within a second of the outage's end."""

DISPATCH_STOPPED: Final = "DISPATCH_STOPPED"
"""The error code of an attempt whose call was recorded as started when its batch stopped on an
error before its outcome was seen (an ambiguous attempt)."""

Downstream = Callable[[list[Item]], None]
"""The stages after one that works in pieces: runs them on a piece at once and writes the result."""


class Stage:
    """One decision about each message of a batch; see the module docstring."""

    calls_out: ClassVar[bool] = False
    """Talks to providers: what earlier stages settled is written first, and urgent arrivals
    are prepared by the stages before it (:meth:`Pipeline.prepare`)."""

    decides_outcomes: ClassVar[bool] = False
    """Turns each call's outcome into the message's next status (by the retry policy): when a
    stage raises, the driver has it settle the calls still in play (:meth:`Pipeline.run`)."""

    def process(self, batch: Batch, downstream: Downstream) -> None:
        raise NotImplementedError

    def after(self, batch: Batch) -> None:
        """Give back what was taken for items no later stage used; must not raise."""

    def close(self) -> None:
        """Release what the stage holds for the process (a connection), at its end."""


class Pipeline:
    def __init__(self, stages: list[Stage], ledger: Ledger, clock: Clock) -> None:
        self.stages = stages
        self.ledger = ledger
        self.clock = clock
        self._calling = next((n for n, stage in enumerate(stages) if stage.calls_out), len(stages))

    def close(self) -> None:
        for stage in self.stages:
            stage.close()

    def run(self, batch: Batch) -> None:
        """See every item of ``batch`` to a disposition, written (or held) by the ledger."""
        self._run(batch, 0, len(self.stages))

    def prepare(self, batch: Batch) -> list[Item]:
        """Run the stages before the one that calls out (without their after-steps) and write
        what they settled; returns the items ready to be called. For messages that join a batch
        already calling: they are added to it, and its after-steps cover them."""
        ran: list[Stage] = []
        try:
            self._stages(batch, 0, self._calling, ran)
        except Exception as error:  # noqa: BLE001 - the pointers must come back, whatever broke
            self._give_back(batch, error)
        self.ledger.write(batch)
        return batch.in_play()

    def _run_pieces(self, piece: list[Item], after: int) -> None:
        """What a stage hands downstream: the items run through the stages after it."""
        self._run(Batch(piece), after, len(self.stages))

    def _run(self, batch: Batch, start: int, stop: int) -> None:
        ran: list[Stage] = []
        try:
            self._stages(batch, start, stop, ran)
        except Exception as error:  # noqa: BLE001 - see _give_back
            self._give_back(batch, error)
        finally:
            for stage in reversed(ran):
                try:
                    stage.after(batch)
                except Exception:
                    log.exception("after-step of %s failed", type(stage).__name__)
            self.ledger.write(batch)

    def _stages(self, batch: Batch, start: int, stop: int, ran: list[Stage]) -> None:
        for index in range(start, stop):
            stage = self.stages[index]
            if stage.calls_out:
                self.ledger.write(batch)
            if not batch.in_play():
                return
            ran.append(stage)
            stage.process(batch, partial(self._run_pieces, after=index + 1))

    def _give_back(self, batch: Batch, error: Exception) -> None:
        reason = f"dispatch stopped: {describe_outage(error) or type(error).__name__}"
        until = self.clock.now() + RETRY_AFTER_FAILURE
        self._settle_calls(batch, reason, until)
        left = batch.in_play()
        for item in left:
            batch.settle(item, Defer(until, reason))
        if describe_outage(error):
            log.warning("%s; %d message(s) come back in %.0f s", reason, len(left), RETRY_AFTER_FAILURE.total_seconds())
        else:
            log.exception(
                "dispatch stopped on an unexpected error; %d message(s) come back in %.0f s", len(left), RETRY_AFTER_FAILURE.total_seconds()
            )

    def _settle_calls(self, batch: Batch, reason: str, until: datetime) -> None:
        """The items still in play that a provider answered, or whose call was recorded as
        started, settled by the stage that decides outcomes, one at a time: an answer as it was
        answered (an acceptance is never sent again), a call not made as not made, a call whose
        outcome was not seen as an ambiguous attempt (:data:`DISPATCH_STOPPED`: the retry
        policy's decision, pinned to the account that may have it). That stage does no I/O that
        can fail (a pause it cannot write is logged), so it raises only on a bug; then the item
        is settled by :func:`_undecided`."""
        answered = [item for item in batch.in_play() if item.called or item.outcome is not None]
        deciders = [stage for stage in self.stages if stage.decides_outcomes]
        for item in answered:
            if item.outcome is None:
                item.outcome = Failure(ErrorKind.AMBIGUOUS, DISPATCH_STOPPED, f"{reason} during the provider call; the provider may have the message")
            try:
                for stage in deciders:
                    stage.process(Batch([item]), _nowhere)
            except Exception:
                log.exception("deciding the outcome of message %s of a stopped batch failed", item.id)
            if item.disposition is None and item.called:
                batch.settle(item, _undecided(item, reason, until))


def _undecided(item: Item, reason: str, until: datetime) -> Disposition:
    """A called item whose outcome could not be decided (a bug in the deciding stage), settled
    as truly as its outcome allows without the retry policy: an acceptance is recorded (a
    possible duplicate if the message was unsure and the provider was not asked), a call not
    made comes back uncounted with the row as it was, and anything else ends ``unknown``
    (:data:`DISPATCH_STOPPED`): the call may have reached the provider, and it is never sent
    again nor counted past the retries."""
    outcome = item.outcome
    accepted = outcome.accepted if isinstance(outcome, Found) else outcome if isinstance(outcome, Accepted) else None
    if accepted is not None:
        unsure = isinstance(outcome, Accepted) and item.row.unsure_since is not None and not isinstance(item.asked_first, Absent)
        return Finish(
            Status.SUBMITTED, f"{reason}; accepted by {item.account} as {accepted.provider_message_id}", accepted=accepted, possible_duplicate=unsure
        )
    if isinstance(outcome, NotSent):
        return Defer(outcome.until, outcome.reason, counted=False, unsure_since=item.row.unsure_since, possible_duplicate=item.row.possible_duplicate)
    return Finish(Status.UNKNOWN, f"{reason} during the provider call, and its outcome could not be decided", DISPATCH_STOPPED)


def _nowhere(piece: list[Item]) -> None:
    raise AssertionError("the stage that decides outcomes hands nothing downstream")
