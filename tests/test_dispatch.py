"""The dispatch path in-process (no Celery), against a real Redis, a real database and the
sandbox over HTTP, with time driven by a fake clock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import ThreadedSandbox, promote_once, wait_until

from sms_worker.dispatch.receipts import poll_budget, poll_statuses
from sms_worker.dispatch.service import dispatch_batch, dispatch_pointers
from sms_worker.priority import Priority
from sms_worker.producer import send_many, send_sms
from sms_worker.queues import keys
from sms_worker.queues.pointers import Pointer, ready_lengths
from sms_worker.routing.meter import count_sent, current_rate
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.views import message_history

RECIPIENT = "+421900123456"


@pytest.fixture
def sandbox():
    """The sandbox with a message final as soon as it is accepted: a status check right after
    the send sees the final status, with no wait for the sandbox's own progression."""
    with ThreadedSandbox(settings=SandboxSettings(sent_after=0, delivered_after=0)) as server:
        yield server


def history(runtime, message_id):
    return message_history(message_id, runtime.settings.resolved_database_url)


def status_of(runtime, message_id) -> str:
    return history(runtime, message_id).message["status"]


def test_a_message_is_submitted_once_with_its_parameters(runtime, sandbox):
    message_id = send_sms(RECIPIENT, "Hello from sms_worker", sender="ACME", priority="high", validity=30, runtime=runtime)

    report = dispatch_batch(runtime)

    assert report.accepted == 1
    [submission] = sandbox.submissions()
    assert submission["to"] == "421900123456"
    assert submission["from"] == "ACME"
    assert submission["params"]["priority"] == 3
    assert submission["params"]["validity"] == 30
    found = history(runtime, message_id)
    assert found.message["status"] == "submitted"
    assert found.message["delivery"] == "queued"
    assert found.message["provider_message_id"] == str(submission["message_id"])
    assert [e["status"] for e in found.events] == ["queued", "calling", "submitted"]


def test_an_expired_message_is_never_sent(runtime, sandbox, clock):
    message_id = send_sms(RECIPIENT, "too late", validity=1, runtime=runtime)
    clock.advance(61)

    report = dispatch_batch(runtime)

    assert report.expired == 1
    assert status_of(runtime, message_id) == "expired"
    assert sandbox.submissions() == []


def test_a_scheduled_message_waits_for_its_time(runtime, sandbox, clock):
    message_id = send_sms(RECIPIENT, "later", send_at=clock.now() + timedelta(minutes=10), runtime=runtime)

    assert promote_once(runtime) == {}
    assert dispatch_batch(runtime).popped == 0
    clock.advance(9 * 60 + 59)
    assert promote_once(runtime) == {}
    clock.advance(1)
    assert promote_once(runtime) == {2: 1}
    assert dispatch_batch(runtime).accepted == 1
    assert status_of(runtime, message_id) == "submitted"
    assert len(sandbox.submissions()) == 1


def test_transient_failures_stop_after_five_retries_within_sixty_minutes(settings_for, redis_client, sandbox, clock):
    """The retry policy alone: the breaker (which would hold the account back) is set out of reach."""
    runtime = build_runtime(settings_for(breaker_consecutive_failures=100), waker=NoWaker(), clock=clock)
    sandbox.add_fault(endpoint="send_message", fault="http_status", status=503)
    message_id = send_sms(RECIPIENT, "will not make it", runtime=runtime)
    first = clock.now()
    attempt_times = []
    for _ in range(20):
        promote_once(runtime)
        report = dispatch_batch(runtime)
        if report.popped:
            attempt_times.append(clock.now())
        if status_of(runtime, message_id) not in ("retrying", "queued"):
            break
        [(_, due)] = runtime.redis.zrange(keys.DUE, 0, 0, withscores=True)
        clock.advance(due - clock.now().timestamp())

    found = history(runtime, message_id).message
    assert found["status"] == "undeliverable"
    assert found["attempts"] == 6
    assert found["error_code"] == "HTTP_503"
    assert "gave up after 5 retries" in found["error_text"]
    assert len(attempt_times) == 6
    assert all(t - first <= timedelta(minutes=60) for t in attempt_times)
    assert len(sandbox.submissions()) == 6


def test_retries_never_run_past_validity(runtime, sandbox, clock):
    sandbox.add_fault(endpoint="send_message", fault="http_status", status=500)
    message_id = send_sms(RECIPIENT, "short-lived", validity=2, runtime=runtime)
    dispatch_batch(runtime)
    assert status_of(runtime, message_id) == "retrying"
    clock.advance(30)
    promote_once(runtime)
    dispatch_batch(runtime)

    found = history(runtime, message_id).message
    assert found["status"] == "expired"
    assert found["attempts"] == 2


def test_a_permanent_error_is_final_at_once(runtime, sandbox):
    sandbox.add_fault(endpoint="send_message", fault="error_code", code="DENIED")
    message_id = send_sms(RECIPIENT, "no", runtime=runtime)

    dispatch_batch(runtime)

    found = history(runtime, message_id).message
    assert found["status"] == "rejected"
    assert found["attempts"] == 1
    assert runtime.redis.zcard(keys.DUE) == 0


def test_a_lost_session_is_renewed_without_using_a_retry(runtime, sandbox):
    send_sms(RECIPIENT, "first", runtime=runtime)
    dispatch_batch(runtime)
    sandbox.add_fault(endpoint="send_message", fault="session_loss", times=1)
    message_id = send_sms(RECIPIENT, "second", runtime=runtime)

    dispatch_batch(runtime)

    found = history(runtime, message_id).message
    assert found["status"] == "submitted"
    assert found["attempts"] == 1
    accepted = [s for s in sandbox.submissions() if s["accepted"]]
    assert [s["text"] for s in accepted] == ["first", "second"]


def test_two_workers_racing_for_one_message_send_it_once(runtime, sandbox, settings_for, clock):
    ids = send_many([{"to": RECIPIENT, "text": f"race {n}"} for n in range(40)], runtime=runtime)
    pointers = [Pointer(Priority.STANDARD, message_id) for message_id in ids]
    runtime.redis.delete(keys.ready(Priority.STANDARD))
    other = build_runtime(settings_for(), waker=NoWaker(), clock=clock)
    barrier = threading.Barrier(2)

    def race(rt):
        barrier.wait()
        dispatch_pointers(rt, pointers)

    threads = [threading.Thread(target=race, args=(rt,)) for rt in (runtime, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()

    texts = sorted(s["text"] for s in sandbox.submissions())
    assert texts == sorted(f"race {n}" for n in range(40))


def test_a_rate_limited_message_waits_without_using_a_retry(runtime, sandbox, settings_for, clock):
    limited = build_runtime(settings_for(telekom_sk_rate=1.0, telekom_sk_burst=2, rate_limit_headroom_seconds=0), waker=NoWaker(), clock=clock)
    ids = send_many([{"to": RECIPIENT, "text": f"limited {n}"} for n in range(5)], runtime=limited)

    report = dispatch_batch(limited)

    assert (report.accepted, report.deferred) == (2, 3)
    assert runtime.redis.zcard(keys.DUE) == 3
    assert [status_of(runtime, i) for i in ids].count("queued") == 3
    assert all(history(runtime, i).message["attempts"] in (0, 1) for i in ids)
    limited.close()


def test_standard_and_low_keep_a_share_of_every_batch(runtime, sandbox, settings_for, clock):
    one_batch = build_runtime(settings_for(batch_seconds=0), waker=NoWaker(), clock=clock)
    send_many([{"to": RECIPIENT, "text": "low", "priority": "low"}] * 50, runtime=runtime)
    send_many([{"to": RECIPIENT, "text": "standard", "priority": "standard"}] * 50, runtime=runtime)
    send_many([{"to": RECIPIENT, "text": "high", "priority": "high"}] * 200, runtime=runtime)

    dispatch_batch(one_batch)
    one_batch.close()

    texts = [s["text"] for s in sandbox.submissions()]
    assert texts.count("high") == 70
    assert texts.count("standard") == 20
    assert texts.count("low") == 10
    assert ready_lengths(runtime.redis) == {3: 130, 2: 30, 1: 40}


def test_delivery_status_is_reconciled_by_polling(runtime, sandbox, clock):
    message_id = send_sms(RECIPIENT, "track me", runtime=runtime)
    dispatch_batch(runtime)
    clock.advance(2)

    report = poll_statuses(runtime)

    assert report.changed == 1
    found = history(runtime, message_id)
    assert found.message["status"] == "delivered"
    assert found.message["delivered_at"] is not None
    assert found.events[-1]["provider_status"] == "DELIVERED"


def test_one_poll_goes_round_after_round_while_checks_are_due_and_time_is_left(runtime, sandbox, clock):
    send_many([{"to": RECIPIENT, "text": f"track {n}"} for n in range(7)], runtime=runtime)
    dispatch_batch(runtime)
    clock.advance(2)

    assert poll_statuses(runtime, limit=3).checked == 3, "no budget: one round"
    report = poll_statuses(runtime, limit=3, budget_seconds=30)

    assert (report.checked, report.changed) == (4, 4)


def test_receipts_catch_up_only_while_nothing_waits_to_be_sent(runtime):
    assert poll_budget(runtime) == runtime.settings.poll_interval_seconds / 2
    send_sms(RECIPIENT, "waiting", runtime=runtime)
    assert poll_budget(runtime) == 0


def test_the_meter_reports_what_each_account_actually_sent(runtime):
    now = time.time()
    count_sent(runtime.redis, {"telekom-sk": 30}, now=now)
    count_sent(runtime.redis, {"telekom-sk": 20}, now=now - 3)

    assert current_rate(runtime.redis, "telekom-sk", seconds=10, now=now + 1) == 5.0
    assert current_rate(runtime.redis, "other", seconds=10, now=now + 1) == 0.0


def test_a_retry_that_comes_due_after_the_window_is_not_sent(runtime, sandbox, clock):
    sandbox.add_fault(endpoint="send_message", fault="http_status", status=503)
    message_id = send_sms(RECIPIENT, "stopped scheduler", runtime=runtime)
    dispatch_batch(runtime)
    clock.advance(61 * 60)
    promote_once(runtime)

    dispatch_batch(runtime)

    found = history(runtime, message_id).message
    assert found["status"] == "undeliverable"
    assert "retry window" in found["error_text"]
    assert len(sandbox.submissions()) == 1


def test_a_send_time_in_another_zone_is_honoured(runtime, sandbox, clock):
    new_york = clock.now().astimezone(ZoneInfo("America/New_York"))
    message_id = send_sms(RECIPIENT, "zoned", send_at=new_york + timedelta(minutes=10), validity=5, runtime=runtime)
    clock.advance(9 * 60)
    promote_once(runtime)
    assert dispatch_batch(runtime).popped == 0
    clock.advance(60)
    promote_once(runtime)

    assert dispatch_batch(runtime).accepted == 1
    assert status_of(runtime, message_id) == "submitted"


def test_a_high_message_overtakes_a_low_batch_already_being_sent(runtime, sandbox, settings_for, clock):
    serial = build_runtime(settings_for(http_concurrency=1), waker=NoWaker(), clock=clock)
    sandbox.add_fault(endpoint="send_message", to="421900000077", fault="latency", ms=150)
    send_many([{"to": "+421900000077", "text": f"low {n}", "priority": "low"} for n in range(6)], runtime=serial)
    batch = threading.Thread(target=dispatch_batch, args=(serial,))
    batch.start()
    wait_until(lambda: len(sandbox.submissions()) >= 1, 10, 0.01, "the low batch to be under way")
    send_sms(RECIPIENT, "urgent", priority="high", runtime=serial)
    batch.join()

    order = [s["text"] for s in sandbox.submissions()]
    assert order.index("urgent") <= 2
    assert len(order) == 7
    serial.close()


def test_slow_calls_do_not_hold_up_the_rest_of_the_batch(runtime, sandbox, settings_for, clock):
    four = build_runtime(settings_for(http_concurrency=4), waker=NoWaker(), clock=clock)
    sandbox.add_fault(endpoint="send_message", to="421900000099", fault="latency", ms=2000)
    send_many([{"to": "+421900000099", "text": f"slow {n}"} for n in range(3)], runtime=four)
    send_many([{"to": RECIPIENT, "text": f"fast {n}"} for n in range(12)], runtime=four)

    dispatch_batch(four)

    fast = [s["received_ts"] for s in sandbox.submissions() if s["text"].startswith("fast")]
    slow = [s["received_ts"] for s in sandbox.submissions() if s["text"].startswith("slow")]
    assert len(fast) == 12
    assert max(fast) < min(slow) + 2.0, "fast messages waited for the slow calls' answers"
    four.close()


def test_a_status_that_has_not_changed_writes_no_event(runtime, sandbox, clock):
    message_id = send_sms(RECIPIENT, "patience", runtime=runtime)
    sandbox.add_fault(endpoint="send_message", to="421900123456", fault="final_status", status="UNKNOWN")
    dispatch_batch(runtime)
    counts = []
    for _ in range(4):
        clock.advance(60)
        poll_statuses(runtime)
        counts.append(len(history(runtime, message_id).events))

    assert counts[1] == counts[2] == counts[3], "a report that did not change wrote an event"
    assert history(runtime, message_id).message["delivery"] == "undetermined"


def test_the_xml_transport_without_a_session_carries_a_message_through(runtime, sandbox, settings_for, clock):
    xml = build_runtime(settings_for(telekom_sk_transport="xml", telekom_sk_use_session=False), waker=NoWaker(), clock=clock)
    message_id = send_sms(RECIPIENT, "over xml", runtime=xml)

    assert dispatch_batch(xml).accepted == 1
    clock.advance(2)
    poll_statuses(xml)

    assert status_of(xml, message_id) == "delivered"
    assert [s["text"] for s in sandbox.submissions()] == ["over xml"]
    xml.close()
