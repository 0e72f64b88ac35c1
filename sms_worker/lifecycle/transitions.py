"""Which change may move a message from which status to which: the table, as data.

Each row is a change kind under one fence (:class:`Fence`): the statuses the row may be in for
the change to apply (``source``: the writer's fence checks it in the same statement, so a row
that moved on meanwhile is left alone) and the statuses the change may leave it in (``target``:
a change that names another is refused before anything is written, :func:`rule_of`).
:func:`markdown` renders the table for docs/architecture.md, whose copy a test compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.changes import (
    Adopted,
    CallStarted,
    Change,
    Claimed,
    Created,
    Expired,
    Failed,
    Reported,
    Requeued,
)
from sms_worker.lifecycle.status import FINAL, HELD, WAITING, Status


class Fence(Enum):
    """What the row must still be, besides its status, for a change to apply to it."""

    NEW = "a new row"
    UNCLAIMED = "names no claim"
    HELD = "names the writer's claim"
    TAKEN_BACK = "names no claim, and this call is its last attempt: the reclaimer took the claim back and nothing started since"


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str
    """The change (a class of :mod:`.changes`), with what follows a failure for :class:`Failed`."""
    fence: Fence
    source: frozenset[Status]
    target: frozenset[Status]
    by: str
    """Who decides it."""


class TransitionRefused(SmsWorkerError):
    """A change names a status its kind may not lead to (a bug: nothing is written)."""


_ACCEPTED = frozenset({Status.SUBMITTED, Status.DELIVERED, Status.UNDELIVERABLE, Status.REJECTED, Status.EXPIRED})
_FAILED = FINAL - {Status.DELIVERED}

TRANSITIONS: tuple[Transition, ...] = (
    Transition("Created", Fence.NEW, frozenset(), frozenset({Status.SCHEDULED, Status.QUEUED}), "producer"),
    Transition("Claimed", Fence.UNCLAIMED, WAITING, frozenset({Status.CLAIMED}), "claim stage"),
    Transition("GivenBack", Fence.HELD, HELD, WAITING, "any stage, pipeline"),
    Transition("TakenBack", Fence.HELD, frozenset({Status.CLAIMED}), WAITING, "reclaimer (a claim read before any call)"),
    Transition("Adopted", Fence.HELD, frozenset({Status.CLAIMED}), frozenset({Status.CLAIMED}), "submit stage (asking the provider)"),
    Transition("CallStarted", Fence.HELD, frozenset({Status.CLAIMED}), frozenset({Status.CALLING}), "submit stage"),
    Transition("CallNotMade", Fence.HELD, frozenset({Status.CALLING}), frozenset({Status.QUEUED, Status.RETRYING}), "decide stage"),
    Transition("Accepted", Fence.HELD, HELD, _ACCEPTED, "decide stage"),
    Transition("Accepted", Fence.TAKEN_BACK, WAITING | {Status.UNKNOWN}, _ACCEPTED, "decide stage, a late answer"),
    Transition("Failed (retry)", Fence.HELD, frozenset({Status.CALLING}), frozenset({Status.RETRYING}), "decide stage, pipeline, reclaimer"),
    Transition("Failed (uncounted)", Fence.HELD, frozenset({Status.CALLING}), frozenset({Status.QUEUED}), "decide stage"),
    Transition("Failed (final)", Fence.HELD, frozenset({Status.CALLING}), _FAILED, "decide stage, reclaimer"),
    Transition("Ended", Fence.UNCLAIMED, WAITING, _FAILED, "validity window stage, route stage"),
    Transition("Ended", Fence.HELD, frozenset({Status.CLAIMED}), frozenset({Status.UNKNOWN}), "decide stage (a near match given up)"),
    Transition("Reported", Fence.UNCLAIMED, frozenset({Status.SUBMITTED}), FINAL | {Status.SUBMITTED}, "status poller, callbacks"),
    Transition("Expired", Fence.UNCLAIMED, WAITING, frozenset({Status.EXPIRED, Status.UNKNOWN}), "sweep"),
    Transition("Requeued", Fence.UNCLAIMED, WAITING, WAITING, "sweep (the status is kept)"),
)
_BY_KEY = {(transition.kind, transition.fence): transition for transition in TRANSITIONS}


def _kind_of(change: Change) -> str:
    """The change's kind, as the table names it."""
    if isinstance(change, Failed):
        return f"Failed ({change.then.value})"
    return type(change).__name__


def _fence_of(change: Change) -> Fence:
    """The fence a change is written behind (a late answer's is decided by the write-behind buffer,
    :func:`~sms_worker.lifecycle.write.apply_each`, once the claim's fence failed)."""
    if isinstance(change, Created):
        return Fence.NEW
    if isinstance(change, CallStarted | Adopted):
        return Fence.HELD
    if isinstance(change, Claimed | Reported | Expired | Requeued):
        return Fence.UNCLAIMED
    return Fence.UNCLAIMED if change.claim is None else Fence.HELD


def rule_of(change: Change, fence: Fence | None = None) -> Transition:
    """The transition ``change`` is under ``fence`` (default: its own, :func:`_fence_of`), the
    status it names checked against it; raises :class:`TransitionRefused` if it is none."""
    key = (_kind_of(change), fence or _fence_of(change))
    rule = _BY_KEY.get(key)
    if rule is None:
        raise TransitionRefused(f"{key[0]} is not a change a row that {key[1].value} may undergo")
    named = _named(change)
    if named is not None and named not in rule.target:
        raise TransitionRefused(f"{key[0]} may lead to {_statuses(rule.target)}, not to {named}")
    return rule


def _named(change: Change) -> Status | None:
    """The status ``change`` names for its rows; None: each row's is decided in SQL
    (:class:`Expired`) or kept (:class:`Adopted`, :class:`Requeued`)."""
    if isinstance(change, Claimed):
        return Status.CLAIMED
    if isinstance(change, CallStarted):
        return Status.CALLING
    if isinstance(change, Adopted | Expired | Requeued):
        return None
    return change.status


def late_source() -> frozenset[Status]:
    """The statuses a late answer may find the row in and still win (:attr:`Fence.TAKEN_BACK`)."""
    return _BY_KEY[("Accepted", Fence.TAKEN_BACK)].source


def markdown() -> str:
    """The table as Markdown, one row per change kind and fence, as docs/architecture.md shows it."""
    lines = ["| change | decided by | the row still | from | to |", "| --- | --- | --- | --- | --- |"]
    for rule in TRANSITIONS:
        source = _statuses(rule.source) if rule.source else "(none)"
        lines.append(f"| `{rule.kind}` | {rule.by} | {rule.fence.value} | {source} | {_statuses(rule.target)} |")
    return "\n".join(lines) + "\n"


_ORDER = list(Status)


def _statuses(statuses: frozenset[Status]) -> str:
    return ", ".join(status.value for status in sorted(statuses, key=_ORDER.index))
