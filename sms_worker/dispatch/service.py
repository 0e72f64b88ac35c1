"""One dispatch batch: pop the most urgent pointers, read their rows, run them through the stages.

    pop ─► read rows ─► validity ─► route ─► pace ─► claim ─► submit ─► health ─► decide
                          window                              (calls)

Each stage is one class in :mod:`sms_worker.dispatch.stages`; :func:`build_pipeline` lists
them. To add a decision about each message (quiet hours, a campaign's pause or rate), write a
:class:`~sms_worker.dispatch.pipeline.Stage` and add it to that list: before ``Claim`` if it
decides whether a message goes now, after ``Submit`` if it looks at outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from sms_worker.dispatch.batch import READ_COLUMNS, Batch, Defer, Finish, Item, ReadRow, Skip
from sms_worker.dispatch.ledger import Ledger
from sms_worker.dispatch.pipeline import RETRY_AFTER_FAILURE, Pipeline
from sms_worker.dispatch.stages.claim import Claim
from sms_worker.dispatch.stages.decide import Decide
from sms_worker.dispatch.stages.health import Health
from sms_worker.dispatch.stages.pace import Pace
from sms_worker.dispatch.stages.route import Route
from sms_worker.dispatch.stages.submit import Submit
from sms_worker.dispatch.stages.validity import ValidityWindow
from sms_worker.lifecycle.status import WAITING, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.queues.pointers import Due, Pointer, keep_awake, pop_batch, pop_urgent, schedule
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
_COLUMNS = [MESSAGES.c[name] for name in ("id", "status", *READ_COLUMNS)]
"""What :func:`load` reads: the id, the status, then the :data:`READ_COLUMNS` (``row[2:]``)."""


@dataclass
class BatchReport:
    popped: int = 0
    skipped: int = 0
    expired: int = 0
    deferred: int = 0
    accepted: int = 0
    retrying: int = 0
    failed: int = 0


def build_pipeline(rt: Runtime) -> Pipeline:
    def arrivals(limit: int, any_priority: bool) -> list[Item]:
        settings = rt.settings
        pointers = pop_batch(rt.redis, limit, settings.standard_share, settings.low_share) if any_priority else pop_urgent(rt.redis, limit)
        arrived = load(rt, pointers)
        pipeline.prepare(arrived)
        return arrived.items

    pipeline = Pipeline(
        [ValidityWindow.of(rt), Route.of(rt), Pace(rt), Claim(rt), Submit(rt, arrivals), Health(rt), Decide.of(rt)],
        Ledger.of(rt),
        rt.clock,
    )
    return pipeline


def pipeline_of(rt: Runtime) -> Pipeline:
    """The process's pipeline, built on first use."""
    pipeline = rt.dispatch_pipeline
    if not isinstance(pipeline, Pipeline):
        pipeline = build_pipeline(rt)
        rt.dispatch_pipeline = pipeline
    return pipeline


def dispatch_batch(rt: Runtime) -> BatchReport:
    """Take the most urgent pointers and see each to its next status.

    A full batch means more may be waiting: other workers are woken at once, not after it."""
    try:
        pointers = pop_batch(rt.redis, rt.settings.batch_size, rt.settings.standard_share, rt.settings.low_share)
        if len(pointers) >= rt.settings.batch_size:
            keep_awake(rt.redis, rt.waker, rt.settings.batch_size)
    except Exception as error:
        if describe_outage(error) is None:
            raise
        log.warning("no batch: %s", describe_outage(error))
        return BatchReport()
    return dispatch_pointers(rt, pointers)


def dispatch_pointers(rt: Runtime, pointers: list[Pointer]) -> BatchReport:
    if not pointers:
        return BatchReport()
    try:
        batch = load(rt, pointers)
    except Exception as error:
        until = rt.clock.now() + RETRY_AFTER_FAILURE
        schedule(rt.redis, [Due(pointer, until) for pointer in pointers])
        if describe_outage(error) is None:
            raise
        log.warning("%s; %d pointer(s) come back in %.0f s", describe_outage(error), len(pointers), RETRY_AFTER_FAILURE.total_seconds())
        return BatchReport(popped=len(pointers), deferred=len(pointers))
    pipeline_of(rt).run(batch)
    return _report(batch, len(pointers))


def load(rt: Runtime, pointers: list[Pointer]) -> Batch:
    """The rows the pointers name that are still waiting, as items in play (a pointer whose row
    moved on, or a second pointer to the same row, is dropped)."""
    priorities = {pointer.message_id: pointer.priority for pointer in pointers}
    if not priorities:
        return Batch()
    with rt.engine.connect() as conn:
        rows = conn.execute(select(*_COLUMNS).where(MESSAGES.c.id.in_(list(priorities)))).all()
    waiting = {s.value for s in WAITING}
    items = [Item(row.id, priorities[row.id], ReadRow.of(row[2:], Status(row.status))) for row in rows if row.status in waiting]
    order = {message_id: n for n, message_id in enumerate(priorities)}
    return Batch(sorted(items, key=lambda item: order[item.id]))


def _report(batch: Batch, popped: int) -> BatchReport:
    report = BatchReport(popped=max(popped, len(batch)))
    report.skipped = report.popped - len(batch)
    for item in batch:
        outcome = item.disposition
        if isinstance(outcome, Skip):
            report.skipped += 1
        elif isinstance(outcome, Finish) and outcome.accepted is not None:
            report.accepted += 1
        elif isinstance(outcome, Finish) and outcome.status is Status.EXPIRED and not item.called:
            report.expired += 1
        elif isinstance(outcome, Finish):
            report.failed += 1
        elif isinstance(outcome, Defer) and outcome.status is Status.RETRYING:
            report.retrying += 1
        elif isinstance(outcome, Defer):
            report.deferred += 1
    return report
