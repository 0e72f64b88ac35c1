"""Recovery sweeps, with rows left the way a crash leaves them and time moved by a fake clock."""

from __future__ import annotations

from datetime import timedelta
import threading

from sqlalchemy import update

from conftest import wait_until
from sms_worker.dispatch import inflight
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.dispatch.sql import MESSAGES
from sms_worker.inspect import message_history
from sms_worker.producer import send_many, send_sms
from sms_worker.queues import keys
from sms_worker.queues.pointers import ready_lengths
from sms_worker.recovery import ensure_redis_state, sweep
from sms_worker.runtime import NoWaker, build_runtime

RECIPIENT = "+421900123456"


def message(runtime, message_id) -> dict:
    return message_history(message_id, runtime.settings.resolved_database_url)["message"]


def abandon_claim(runtime, message_id) -> None:
    """Leave the row as a worker killed right after its claim leaves it."""
    runtime.redis.delete(keys.ready(2))
    now = runtime.clock.now()
    with runtime.engine.begin() as conn:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == message_id)
            .values(status="PROCESSING", attempts=1, first_attempt_at=now, lease_until=now + timedelta(seconds=runtime.settings.lease_seconds))
        )


def test_a_claim_whose_call_never_started_is_queued_again_after_its_lease(runtime, sandbox, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "orphan", runtime=runtime)
    abandon_claim(runtime, message_id)

    assert sweep(runtime).leases_requeued == 0
    clock.advance(runtime.settings.lease_seconds + 1)
    assert sweep(runtime).leases_requeued == 1

    assert message(runtime, message_id)["status"] == "UNSENT"
    assert message(runtime, message_id)["attempts"] == 0
    dispatch_batch(runtime)
    assert message(runtime, message_id)["status"] == "QUEUED"
    assert len(sandbox.submissions()) == 1


def test_a_claim_lost_during_the_provider_call_becomes_unknown_not_a_second_send(runtime, sandbox, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "maybe sent", runtime=runtime)
    abandon_claim(runtime, message_id)
    inflight.mark_claimed(runtime.redis, [message_id], "c1", 3600)
    assert inflight.start_calls(runtime.redis, [(message_id, "c2")]) == [False]
    assert inflight.start_calls(runtime.redis, [(message_id, "c1")]) == [True]
    clock.advance(runtime.settings.lease_seconds + 1)

    report = sweep(runtime)

    assert report.leases_unknown == 1
    found = message(runtime, message_id)
    assert (found["status"], found["error_code"]) == ("UNKNOWN", "WORKER_LOST")
    assert dispatch_batch(runtime).popped == 0
    assert sandbox.submissions() == []


def test_a_lost_pointer_is_found_once_nothing_else_would_pick_it_up(runtime, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "pointer lost", runtime=runtime)
    runtime.redis.delete(keys.ready(2))

    assert sweep(runtime).requeued == 0
    clock.advance(runtime.settings.stale_queued_seconds + 1)
    assert sweep(runtime).requeued == 1
    assert runtime.redis.lrange(keys.ready(2), 0, -1) == [message_id.hex.encode()]
    assert sweep(runtime).requeued == 0


def test_after_a_redis_flush_every_pointer_is_rebuilt_from_the_database(runtime, clock):
    ensure_redis_state(runtime)
    ready_ids = send_many([{"to": RECIPIENT, "text": f"r{n}", "priority": "low"} for n in range(3)], runtime=runtime)
    later = send_sms(RECIPIENT, "later", send_at=clock.now() + timedelta(hours=1), runtime=runtime)
    runtime.redis.flushall()

    assert ensure_redis_state(runtime) == 4

    assert sorted(runtime.redis.lrange(keys.ready(1), 0, -1)) == sorted(i.hex.encode() for i in ready_ids)
    assert runtime.redis.zscore(keys.DUE, f"2{later.hex}") == (clock.now() + timedelta(hours=1)).timestamp()
    assert ensure_redis_state(runtime) == 0


def test_a_message_still_waiting_after_its_validity_is_expired(runtime, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "stale", validity=5, runtime=runtime)
    clock.advance(5 * 60)

    assert sweep(runtime).expired == 1
    assert message(runtime, message_id)["status"] == "EXPIRED"
    assert ready_lengths(runtime.redis)[2] == 1
    assert dispatch_batch(runtime).accepted == 0


def test_a_slow_worker_whose_lease_ran_out_sends_nothing_twice(settings_for, redis_client, sandbox, clock):
    slow = build_runtime(settings_for(http_concurrency=1), waker=NoWaker(), clock=clock)
    fast = build_runtime(settings_for(), waker=NoWaker(), clock=clock)
    ensure_redis_state(slow)
    sandbox.add_fault(endpoint="send_message", to="421900000001", fault="latency", ms=1500)
    stuck, waiting = send_many([{"to": "+421900000001", "text": "stuck"}, {"to": "+421900000002", "text": "waiting"}], runtime=slow)
    worker = threading.Thread(target=dispatch_batch, args=(slow,))
    worker.start()
    wait_until(lambda: [s["text"] for s in sandbox.submissions()] == ["stuck"], 10, 0.02, "the slow call to reach the provider")
    clock.advance(slow.settings.lease_seconds + 1)

    report = sweep(fast)
    assert (report.leases_unknown, report.leases_requeued) == (1, 1)
    assert message(fast, stuck)["status"] == "UNKNOWN"
    assert dispatch_batch(fast).accepted == 1
    worker.join()

    assert sorted(s["text"] for s in sandbox.submissions()) == ["stuck", "waiting"]
    late = message_history(stuck, fast.settings.resolved_database_url)
    assert late["message"]["status"] == "QUEUED"
    assert late["events"][-1]["reason"].startswith("late answer after the sweep gave up on this worker")
    assert message(fast, waiting)["status"] == "QUEUED"
    slow.close()
    fast.close()
