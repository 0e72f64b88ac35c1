"""The producer API: validate, persist, enqueue; idempotent; all or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sms_worker.lifecycle.tables import EVENTS, MESSAGES
from sms_worker.priority import Priority
from sms_worker.producer import MessageRequest, send_many, send_many_result, send_sms
from sms_worker.queues import keys
from sms_worker.queues.pointers import ready_lengths
from sms_worker.validation import BatchRejected, InvalidField


def count(runtime, table) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_send_many_persists_then_points_at_each_message(runtime):
    ids = send_many(
        [
            {"to": "+421900000001", "text": "a", "priority": "high"},
            MessageRequest(to="+421900000002", text="b", priority="low"),
            {"to": "+421900000003", "text": "c", "send_at": runtime.clock.now() + timedelta(hours=1)},
        ],
        runtime=runtime,
    )

    assert len(set(ids)) == 3
    assert count(runtime, MESSAGES) == 3 and count(runtime, EVENTS) == 3
    assert ready_lengths(runtime.redis) == {3: 1, 2: 0, 1: 1}
    assert runtime.redis.zscore(keys.DUE, f"2{ids[2].hex}") == (runtime.clock.now() + timedelta(hours=1)).timestamp()


def test_one_bad_message_rejects_the_batch_and_writes_nothing(runtime):
    with pytest.raises(BatchRejected) as caught:
        send_many(
            [
                {"to": "+421900000001", "text": "fine"},
                {"to": "not a number", "text": "x"},
                {"to": "+421900000001", "text": ""},
                {"to": "+421900000001", "text": "x", "colour": "red"},
            ],
            runtime=runtime,
        )

    assert [str(e) for e in caught.value.errors] == [
        "messages[1].to: 'not a number' has letters: write the number in digits (letters are not read as a keypad's digits)",
        "messages[2].text: must not be empty",
        "messages[3].colour: is not a message field",
    ]
    assert count(runtime, MESSAGES) == 0 and count(runtime, EVENTS) == 0
    assert ready_lengths(runtime.redis) == {3: 0, 2: 0, 1: 0}


def test_text_that_is_not_valid_unicode_is_refused_and_the_batch_writes_nothing(runtime):
    with pytest.raises(InvalidField) as caught:
        send_sms("+421900000962", "a \ud83d b", runtime=runtime)  # the input: a lone surrogate
    assert (caught.value.field, caught.value.reason) == ("text", "is not valid Unicode: an unpaired surrogate U+D83D at position 2")

    with pytest.raises(BatchRejected) as rejected:
        send_many(
            [
                {"to": "+421900000001", "text": "fine"},
                {"to": "+421900000002", "text": "low \udc00 surrogate"},  # sibling: the other half
                {"to": "+421900000003", "text": "nul \x00 inside"},  # sibling: PostgreSQL text refuses NUL
                {"to": "+421900000004", "text": "ok", "campaign_id": "spring\ud800"},  # sibling: another field
                {"to": "+421900000005", "text": "ok", "idempotency_key": "k\x00"},
            ],
            runtime=runtime,
        )
    assert [(e.index, e.field) for e in rejected.value.errors] == [(1, "text"), (2, "text"), (3, "campaign_id"), (4, "idempotency_key")]
    assert count(runtime, MESSAGES) == 0 and count(runtime, EVENTS) == 0


def test_a_recipient_from_a_dataframe_or_a_spreadsheet(runtime):
    with pytest.raises(InvalidField, match="to: 421900000105 is an int, not text"):
        send_sms(421900000105, "from a dataframe", runtime=runtime)
    message_id = send_sms("\ufeff421900000105", "from a spreadsheet", runtime=runtime)
    with runtime.engine.connect() as conn:
        assert conn.execute(select(MESSAGES.c.recipient).where(MESSAGES.c.id == message_id)).scalar_one() == "+421900000105"


def test_the_same_idempotency_key_yields_the_first_message(runtime):
    first = send_sms("+421900000001", "once", idempotency_key="order-1", runtime=runtime)
    again = send_sms("+421900000001", "once", idempotency_key="order-1", runtime=runtime)
    batch = send_many([{"to": "+421900000001", "text": "once", "idempotency_key": k} for k in ("order-1", "order-2", "order-2")], runtime=runtime)

    assert again == first
    assert batch[0] == first and batch[1] == batch[2] != first
    assert count(runtime, MESSAGES) == 2
    pointed_at = set(runtime.redis.lrange(keys.ready(Priority.STANDARD), 0, -1))
    assert pointed_at == {first.hex.encode(), batch[1].hex.encode()}, "a retry may point at its message again, never at another"


def test_a_retry_with_the_key_after_an_unknown_outcome_queues_the_message_now(runtime):
    """A send whose COMMIT's outcome was unknown wrote the row (say) but queued nothing: its retry
    with the same key gets the id and a pointer, not a ten-minute wait for the sweep. A batch that
    mixes keys and no keys is resolved too (it raised KeyError)."""
    batch = [{"to": "+421900000001", "text": "keyless"}, {"to": "+421900000002", "text": "keyed", "idempotency_key": "order-5"}]
    first = send_many(batch, runtime=runtime)
    runtime.redis.delete(keys.ready(Priority.STANDARD))  # as the unknown outcome left it: written, not queued

    receipt = send_many_result(batch, runtime=runtime)

    assert receipt.ids[1] == first[1] and receipt.ids[0] != first[0], "the keyless message is a new one: it has no key to be known by"
    assert receipt.queued_by == "redis"
    assert sorted(runtime.redis.lrange(keys.ready(Priority.STANDARD), 0, -1)) == sorted(i.hex.encode() for i in receipt.ids)
    assert count(runtime, MESSAGES) == 3


def test_a_key_reused_for_a_different_message_is_a_conflict_that_names_the_key(runtime):
    first = send_sms("+421900000001", "Your code is 4821", idempotency_key="order-1", runtime=runtime)
    with pytest.raises(InvalidField) as caught:  # the input: the same key, another recipient
        send_sms("+421900000002", "Your code is 4821", idempotency_key="order-1", runtime=runtime)
    assert caught.value.field == "idempotency_key"
    assert caught.value.reason == f"'order-1' already names a different message ({first}); use a new key for a new message"
    for changed in ({"text": "Your code is 9999"}, {"priority": "high"}, {"sender": "ACME"}):  # siblings: other fields
        with pytest.raises(InvalidField, match="idempotency_key: 'order-1' already names a different message"):
            send_sms("+421900000001", **{"text": "Your code is 4821", **changed}, idempotency_key="order-1", runtime=runtime)

    with pytest.raises(BatchRejected) as rejected:  # sibling: the conflict inside one batch; nothing of it is written
        send_many(
            [
                {"to": "+421900000003", "text": "new", "idempotency_key": "order-3"},
                {"to": "+421900000004", "text": "new", "idempotency_key": "order-3"},
            ],
            runtime=runtime,
        )
    assert [(e.index, e.field) for e in rejected.value.errors] == [(1, "idempotency_key")]
    assert count(runtime, MESSAGES) == 1 and sum(ready_lengths(runtime.redis).values()) == 1


def test_text_longer_than_the_part_limit_is_refused(runtime):
    with pytest.raises(InvalidField, match=r"text: needs 11 GSM-7 segments, more than the limit of 10"):
        send_sms("+421900000001", "x" * (153 * 10 + 1), runtime=runtime)


def test_unicode_false_is_counted_after_the_downgrade(runtime):
    auto = send_sms("+421900000001", "Ďakujeme, čoskoro doručíme.", runtime=runtime)
    downgraded = send_sms("+421900000001", "Ďakujeme, čoskoro doručíme.", unicode=False, runtime=runtime)
    with runtime.engine.connect() as conn:
        rows = dict(conn.execute(select(MESSAGES.c.id, MESSAGES.c.encoding)).all())
    assert rows[auto] == "UCS-2" and rows[downgraded] == "GSM-7"


def test_an_unknown_account_is_named(runtime):
    with pytest.raises(InvalidField, match="account: 'nope' is not a configured account"):
        send_sms("+421900000001", "x", account="nope", runtime=runtime)


def test_provider_is_the_deprecated_name_of_account(runtime):
    with pytest.warns(FutureWarning, match="'provider' is deprecated, use 'account'"):
        [message_id] = send_many([{"to": "+421900000001", "text": "old name", "provider": "telekom-sk"}], runtime=runtime)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
    assert (row.account, row.requested_account, row.pinned_account) == ("telekom-sk", "telekom-sk", "telekom-sk")
    with pytest.warns(FutureWarning) as warned:
        send_sms("+421900000001", "old keyword", provider="telekom-sk", runtime=runtime)
    assert [w.filename for w in warned] == [__file__], "the warning names the caller's line"
    with pytest.warns(FutureWarning), pytest.raises(InvalidField, match="provider: give 'account' only"):
        send_sms("+421900000001", "both", provider="telekom-sk", account="telekom-sk", runtime=runtime)
