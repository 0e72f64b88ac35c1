"""The message's lifecycle (:mod:`sms_worker.lifecycle`): the table of allowed transitions as the
documentation shows it, a change refused before anything is written, a batch of changes written
whole or not at all behind the fence, and when a late answer wins."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sms_worker.lifecycle.calls import CallRecord
from sms_worker.lifecycle.changes import (
    Accepted,
    Call,
    CallStarted,
    Claimed,
    Ended,
    Failed,
    GivenBack,
    Then,
)
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.transitions import TransitionRefused, markdown
from sms_worker.lifecycle.write import MovedOn, apply, apply_each, claim
from sms_worker.producer import send_many
from sms_worker.views import message_history

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
ACCOUNT = "telekom-sk"


def test_the_table_of_transitions_in_the_architecture_document_is_the_codes():
    found = re.search(r"<!-- transitions: [^\n]*-->\n(.*?)<!-- /transitions -->", DOC.read_text(), re.DOTALL)
    assert found is not None, "docs/architecture.md has no table of transitions between its markers"
    assert found.group(1) == markdown(), (
        "docs/architecture.md's table of transitions differs from sms_worker.lifecycle.transitions.markdown(): render it again"
    )


def history(rt, message_id: uuid.UUID) -> list[tuple[str, str]]:
    return [(event["status"], event["reason"]) for event in message_history(message_id, rt.settings.resolved_database_url).events]


def row(rt, message_id: uuid.UUID):
    with rt.engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()


def test_a_change_to_a_status_its_kind_may_not_lead_to_is_refused_and_nothing_is_written(runtime):
    [message_id] = send_many([{"to": "+421900000981", "text": "refused"}], runtime=runtime)
    before = history(runtime, message_id)
    wrong = Ended(id=message_id, claim=None, at=runtime.clock.now(), reason="a bug", status=Status.SUBMITTED, code=None)

    with pytest.raises(TransitionRefused, match="not to submitted"), runtime.engine.begin() as conn:
        apply(conn, [wrong])

    assert row(runtime, message_id).status == Status.QUEUED.value
    assert history(runtime, message_id) == before


def test_changes_are_written_whole_or_not_at_all_and_a_row_that_moved_on_is_left_alone(runtime):
    kept, taken = send_many([{"to": "+421900000982", "text": "kept"}, {"to": "+421900000983", "text": "taken"}], runtime=runtime)
    now = runtime.clock.now()
    with runtime.engine.begin() as conn:
        claim(conn, Claimed(uuid.uuid4(), "another worker", {taken: ACCOUNT}, now, now))
    expired = [
        Ended(id=message_id, claim=None, at=now, reason="validity ended before it could be sent; never sent", status=Status.EXPIRED, code="X")
        for message_id in (kept, taken)
    ]

    with pytest.raises(MovedOn), runtime.engine.begin() as conn:
        apply(conn, expired)
    assert (row(runtime, kept).status, len(history(runtime, kept))) == (Status.QUEUED.value, 1), "nothing of the batch was written"

    with runtime.engine.begin() as conn:
        apply_each(conn, expired, now)
    assert (row(runtime, kept).status, row(runtime, kept).error_code) == (Status.EXPIRED.value, "X")
    assert row(runtime, taken).status == Status.CLAIMED.value, "another worker holds it: the batch's decision is not written"
    assert len(history(runtime, taken)) == 1


class _Message:
    """One message through the lifecycle's changes, as workers and the reclaimer would write them."""

    def __init__(self, rt, text: str) -> None:
        self.rt = rt
        [self.id] = send_many([{"to": "+421900000984", "text": text}], runtime=rt)

    def claimed_and_called(self) -> tuple[uuid.UUID, Call]:
        now = self.rt.clock.now()
        held = uuid.uuid4()
        with self.rt.engine.begin() as conn:
            claim(conn, Claimed(held, "worker", {self.id: ACCOUNT}, now, now))
        record = CallRecord(self.rt.engine)
        try:
            assert record.start(CallStarted((self.id,), (held,), now)) == {self.id}
        finally:
            record.close()
        return held, Call(row(self.rt, self.id).attempts, now, f"attempt via {ACCOUNT}")

    def taken_back(self, held: uuid.UUID, call: Call) -> None:
        """The reclaimer: the worker was lost during the call, which is ambiguous; retried later."""
        now = self.rt.clock.now()
        lost = Failed(
            id=self.id,
            claim=held,
            at=now,
            reason="worker lost during the provider call",
            call=Call(call.attempt, call.started_at, None),
            then=Then.RETRY,
            status=Status.RETRYING,
            code="WORKER_LOST",
            until=now,
            unsure_since=call.started_at,
        )
        with self.rt.engine.begin() as conn:
            apply(conn, [lost])

    def asked_in_vain(self) -> None:
        """Another worker claims it and asks its provider whether it has it; the question fails."""
        now = self.rt.clock.now()
        held = uuid.uuid4()
        with self.rt.engine.begin() as conn:
            claim(conn, Claimed(held, "another worker", {self.id: ACCOUNT}, now, now))
            failed = GivenBack(id=self.id, claim=held, at=now, reason="asking failed", status=Status.RETRYING, until=now, code="LOOKUP_FAILED")
            apply(conn, [failed])

    def late_acceptance(self, held: uuid.UUID, call: Call) -> None:
        now = self.rt.clock.now()
        accepted = Accepted(
            id=self.id,
            claim=held,
            at=now,
            reason="accepted by telekom-sk as p-1",
            call=call,
            status=Status.SUBMITTED,
            account=ACCOUNT,
            provider_message_id="p-1",
            provider_status="QUEUED",
            delivery=Delivery.QUEUED,
            next_check_at=now + timedelta(seconds=5),
        )
        with pytest.raises(MovedOn), self.rt.engine.begin() as conn:
            apply(conn, [accepted])
        with self.rt.engine.begin() as conn:
            apply_each(conn, [accepted], now)


def test_a_late_acceptance_wins_while_nothing_happened_since_its_claim_was_taken_back_whatever_the_error_code(runtime, clock):
    """The row was taken back from this very call (``WORKER_LOST``), and since then only a
    question to the provider failed (``LOOKUP_FAILED``): no call started since, so the provider's
    late acceptance is the truth, and the message is not sent again."""
    message = _Message(runtime, "late but first")
    held, call = message.claimed_and_called()
    clock.advance(1)
    message.taken_back(held, call)
    message.asked_in_vain()
    assert row(runtime, message.id).error_code == "LOOKUP_FAILED"

    message.late_acceptance(held, call)

    found = row(runtime, message.id)
    assert (found.status, found.provider_message_id, found.possible_duplicate) == (Status.SUBMITTED.value, "p-1", False)
    assert history(runtime, message.id)[-1] == (
        Status.SUBMITTED.value,
        "late answer, after the sweep took the claim back: accepted by telekom-sk as p-1",
    )


def test_a_late_acceptance_after_another_call_started_is_a_possible_duplicate(runtime, clock):
    message = _Message(runtime, "late and second")
    held, call = message.claimed_and_called()
    clock.advance(1)
    message.taken_back(held, call)
    clock.advance(1)
    message.claimed_and_called()

    message.late_acceptance(held, call)

    found = row(runtime, message.id)
    assert (found.status, found.provider_message_id, found.possible_duplicate) == (Status.CALLING.value, None, True)
    assert history(runtime, message.id)[-1][1].startswith("late answer, after the sweep took the claim back: not applied: POSSIBLE DUPLICATE")


def test_a_report_an_older_worker_writes_in_the_old_spelling_reads_as_undetermined():
    """During a rolling upgrade past migration 0006 a 0.1 worker may still store ``unknown``."""
    assert Delivery("unknown") is Delivery.UNDETERMINED
    assert Delivery("unknown").status is Status.SUBMITTED, "not the final status unknown: a later report may still tell"
    with pytest.raises(ValueError):
        Delivery("unknowable")
