"""The tasks: each a few lines over a plain function that is tested without Celery."""

from __future__ import annotations

from dataclasses import asdict

from sms_worker.dispatch.held import apply_held
from sms_worker.dispatch.receipts import poll_budget
from sms_worker.dispatch.receipts import poll_statuses as poll_due_statuses
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.queues.wakeups import DISPATCH_TASK
from sms_worker.recovery import sweep as run_sweep
from sms_worker.runtime import process_runtime
from sms_worker.tasks.app import celery_app


@celery_app.task(name=DISPATCH_TASK)
def dispatch() -> dict[str, int]:
    return asdict(dispatch_batch(process_runtime()))


@celery_app.task(name="sms_worker.sweep")
def sweep() -> dict[str, int]:
    return asdict(run_sweep(process_runtime()))


@celery_app.task(name="sms_worker.poll_statuses")
def poll_statuses() -> dict[str, int]:
    rt = process_runtime()
    held = apply_held(rt)
    return {**asdict(poll_due_statuses(rt, budget_seconds=poll_budget(rt))), "held_applied": held.applied, "held_dropped": held.dropped}
