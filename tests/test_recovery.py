"""Recovery, with rows left the way a crash leaves them and time moved by a fake clock."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis
from conftest import CommitCutter, promote_once, wait_until
from sqlalchemy import create_engine, make_url, select, update

from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.priority import Priority
from sms_worker.producer import send_many, send_sms
from sms_worker.queues import keys
from sms_worker.queues.pointers import ready_lengths
from sms_worker.recovery import Reclaimer, ReclaimReport, ensure_redis_state, sweep
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.views import message_history
from sms_worker.workers.lease import DISPATCHERS

RECIPIENT = "+421900123456"


def message(runtime, message_id) -> dict:
    return message_history(message_id, runtime.settings.resolved_database_url).message


def events(runtime, message_id) -> list[dict]:
    return message_history(message_id, runtime.settings.resolved_database_url).events


def leave_held(runtime, message_id, status: str, attempts: int) -> None:
    """Leave the row as a worker killed in ``status`` leaves it: held under a lease that is never renewed."""
    runtime.redis.delete(keys.ready(Priority.STANDARD))
    runtime.lease.renew()
    now = runtime.clock.now()
    with runtime.engine.begin() as conn:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == message_id)
            .values(
                status=status,
                attempts=attempts,
                first_attempt_at=now if attempts else None,
                claim_id=message_id,
                dispatcher=runtime.lease.id,
                account="telekom-sk",
            )
        )


def watch(reclaimer, clock, seconds: float) -> ReclaimReport:
    """What the scheduler's reclaimer does over ``seconds``: a look every second; the reports added up."""
    total = ReclaimReport()
    for _ in range(round(seconds)):
        clock.advance(1)
        report = reclaimer.tick()
        total.requeued, total.ambiguous = total.requeued + report.requeued, total.ambiguous + report.ambiguous
    return total


def reclaim_after_the_lease(runtime) -> ReclaimReport:
    reclaimer = Reclaimer(runtime)
    assert reclaimer.tick().requeued == 0, "the lease is still fresh"
    assert watch(reclaimer, runtime.clock, runtime.settings.lease_seconds - 1) == ReclaimReport(), "not yet a whole lease"
    return watch(reclaimer, runtime.clock, 2)


def test_a_claim_whose_call_never_started_is_queued_again_within_a_lease(runtime, sandbox):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "orphan", runtime=runtime)
    leave_held(runtime, message_id, "claimed", attempts=0)

    report = reclaim_after_the_lease(runtime)

    assert (report.requeued, report.ambiguous) == (1, 0)
    found = message(runtime, message_id)
    assert (found["status"], found["attempts"], found["claim_id"]) == ("queued", 0, None)
    runtime.clock.advance(1)
    from conftest import promote_once

    promote_once(runtime)
    dispatch_batch(runtime)
    assert message(runtime, message_id)["status"] == "submitted"
    assert len(sandbox.submissions()) == 1


def test_a_call_in_flight_when_its_worker_died_is_an_ambiguous_attempt_retried_on_its_account_only(runtime, sandbox):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "maybe sent", runtime=runtime)
    leave_held(runtime, message_id, "calling", attempts=1)

    report = reclaim_after_the_lease(runtime)

    assert (report.requeued, report.ambiguous) == (0, 1)
    found = message(runtime, message_id)
    assert (found["status"], found["error_code"], found["attempts"]) == ("retrying", "WORKER_LOST", 1)
    assert found["pinned_account"] == "telekom-sk", "another account would send it a second time"
    assert found["requested_account"] is None, "the producer named no account"
    assert "may have the message" in events(runtime, message_id)[-1]["reason"]
    assert sandbox.submissions() == []


def test_ambiguous_attempts_end_unknown_when_they_are_not_retried(settings_for, redis_client, clock):
    runtime = build_runtime(settings_for(on_ambiguous="give-up"), waker=NoWaker(), clock=clock)
    message_id = send_sms(RECIPIENT, "maybe sent", runtime=runtime)
    leave_held(runtime, message_id, "calling", attempts=1)

    reclaim_after_the_lease(runtime)

    found = message(runtime, message_id)
    assert (found["status"], found["error_code"]) == ("unknown", "WORKER_LOST")
    runtime.close()


def an_outage_seen_by(reclaimer, runtime) -> None:
    """The reclaimer looks while the database is away."""
    dead_database = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    real_engine, runtime.engine = runtime.engine, dead_database
    try:
        reclaimer.tick()
        raise AssertionError("the tick should have met the outage")
    except Exception as error:  # noqa: BLE001 - the outage itself
        assert "Connection refused" in str(error) or "connect" in str(error).lower()
    finally:
        runtime.engine = real_engine


def test_after_a_database_outage_a_live_worker_has_a_whole_lease_to_renew(runtime, clock):
    message_id = send_sms(RECIPIENT, "held by a live worker", runtime=runtime)
    leave_held(runtime, message_id, "calling", attempts=1)
    reclaimer = Reclaimer(runtime)
    reclaimer.tick()
    lease = runtime.settings.lease_seconds
    assert watch(reclaimer, clock, lease / 5) == ReclaimReport(), "the outage comes just before the next renewal"
    clock.advance(lease * 3)
    an_outage_seen_by(reclaimer, runtime)

    assert watch(reclaimer, clock, lease - lease / 5 - 1) == ReclaimReport(), "the outage counts for nothing"
    runtime.lease.renew()
    assert watch(reclaimer, clock, lease - 1) == ReclaimReport(), "it renewed once the database was back: a new lease"
    assert message(runtime, message_id)["status"] == "calling"
    assert watch(reclaimer, clock, 2).ambiguous == 1, "a worker that renews no more is lost a lease later"


def test_a_reclaimer_held_up_across_an_outage_does_not_take_a_live_workers_claims(runtime, clock):
    """The sibling: an outage (or a stall of the host) that the reclaimer did not see, its loop
    held up meanwhile. The wall clock says every heartbeat is three leases old; the reclaimer
    has watched them for one look only."""
    message_id = send_sms(RECIPIENT, "held by a live worker", runtime=runtime)
    leave_held(runtime, message_id, "calling", attempts=1)
    reclaimer = Reclaimer(runtime)
    reclaimer.tick()
    clock.advance(runtime.settings.lease_seconds * 3)

    assert reclaimer.tick() == ReclaimReport()
    runtime.lease.renew()
    assert watch(reclaimer, clock, runtime.settings.lease_seconds) == ReclaimReport()
    assert message(runtime, message_id)["status"] == "calling"


def test_a_claim_whose_commit_went_unanswered_is_given_back_and_the_message_sent(settings_for, redis_client, sandbox, clock, database_url):
    """The database committed the claim, and the answer never came (the server crashed or the
    network was cut at that instant): the worker, alive, must give back what it may hold, or
    the message stays ``claimed`` for as long as its lease is renewed (found by the chaos
    outage run: 7 messages ``claimed`` for ever)."""
    if database_url.startswith("sqlite"):
        pytest.skip("a commit whose answer is lost needs a server between")
    url = make_url(database_url)
    cutter = CommitCutter(url.port or 5432)
    rt = build_runtime(settings_for(database_url=url.set(port=cutter.port).render_as_string(hide_password=False)), waker=NoWaker(), clock=clock)
    try:
        message_id = send_sms(RECIPIENT, "claimed in doubt", runtime=rt)
        cutter.arm(b"RETURNING sms_message.id")
        assert dispatch_batch(rt).accepted == 0
        assert cutter.cut.is_set(), "the claim's commit was cut"

        clock.advance(2)
        promote_once(rt)
        assert dispatch_batch(rt).accepted == 1
        assert [s["text"] for s in sandbox.submissions()] == ["claimed in doubt"]
        assert message(rt, message_id)["status"] == "submitted"
    finally:
        rt.close()
        cutter.close()


def test_a_call_record_whose_answer_went_missing_is_given_back_and_the_message_sent_once(settings_for, redis_client, sandbox, clock, database_url):
    """The sibling: the statement that records a call as started (``calling``, in autocommit)
    was applied and its answer lost, so the call was not made; the worker gives the claim back
    and sends the message once, later."""
    if database_url.startswith("sqlite"):
        pytest.skip("a statement whose answer is lost needs a server between")
    url = make_url(database_url)
    cutter = CommitCutter(url.port or 5432)
    rt = build_runtime(settings_for(database_url=url.set(port=cutter.port).render_as_string(hide_password=False)), waker=NoWaker(), clock=clock)
    try:
        message_id = send_sms(RECIPIENT, "recorded in doubt", runtime=rt)
        marker = b"SET status='calling'"
        cutter.arm(marker, answer_to=marker)
        assert dispatch_batch(rt).accepted == 0
        assert cutter.cut.is_set(), "the call record's answer was cut"
        assert sandbox.submissions() == [], "no call without its record"

        clock.advance(2)
        promote_once(rt)
        assert dispatch_batch(rt).accepted == 1
        assert [s["text"] for s in sandbox.submissions()] == ["recorded in doubt"]
        assert message(rt, message_id)["status"] == "submitted"
    finally:
        rt.close()
        cutter.close()


def test_the_first_batch_after_the_database_restarted_is_called_at_once(settings_for, redis_client, sandbox, clock, database_url):
    """Every connection the worker kept dies with a restart of the database, the one that records
    calls as started too: it is replaced at once, not after a failed batch and a second's wait
    (the chaos outage run resumed 2.27 s after the database came back, over its 1.5 s)."""
    if database_url.startswith("sqlite"):
        pytest.skip("a restart of the server needs a server")
    url = make_url(database_url)
    proxy = CommitCutter(url.port or 5432)
    rt = build_runtime(settings_for(database_url=url.set(port=proxy.port).render_as_string(hide_password=False)), waker=NoWaker(), clock=clock)
    try:
        send_sms(RECIPIENT, "before the restart", runtime=rt)
        assert dispatch_batch(rt).accepted == 1
        proxy.drop_all()

        send_sms(RECIPIENT, "after the restart", runtime=rt)
        assert dispatch_batch(rt).accepted == 1
        assert [s["text"] for s in sandbox.submissions()] == ["before the restart", "after the restart"]
    finally:
        rt.close()
        proxy.close()


def test_outcomes_that_cannot_be_written_are_held_and_written_when_the_database_returns(runtime, sandbox):
    message_id = send_sms(RECIPIENT, "held outcome", runtime=runtime)
    dead_database = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    held = runtime.write_behind
    real_engine, held._engine = held._engine, dead_database
    try:
        report = dispatch_batch(runtime)
        assert report.accepted == 1
        assert held.holding == 1
        assert message(runtime, message_id)["status"] == "calling", "the outcome is held, not lost and not guessed"
        assert held.flush() == 1
    finally:
        held._engine = real_engine

    assert held.flush() == 0
    assert message(runtime, message_id)["status"] == "submitted"
    assert len(sandbox.submissions()) == 1


def test_a_dead_workers_lease_goes_once_it_holds_nothing(runtime):
    message_id = send_sms(RECIPIENT, "orphan", runtime=runtime)
    leave_held(runtime, message_id, "claimed", attempts=0)

    reclaim_after_the_lease(runtime)

    with runtime.engine.connect() as conn:
        assert conn.execute(select(DISPATCHERS.c.id)).all() == []


def test_a_lost_pointer_is_found_once_nothing_else_would_pick_it_up(runtime, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "pointer lost", runtime=runtime)
    runtime.redis.delete(keys.ready(Priority.STANDARD))

    assert sweep(runtime).requeued == 0
    clock.advance(runtime.settings.stale_queued_seconds + 1)
    assert sweep(runtime).requeued == 1
    assert runtime.redis.lrange(keys.ready(Priority.STANDARD), 0, -1) == [message_id.hex.encode()]
    assert sweep(runtime).requeued == 0


def test_after_a_redis_flush_every_pointer_is_rebuilt_from_the_database(runtime, clock):
    ensure_redis_state(runtime)
    ready_ids = send_many([{"to": RECIPIENT, "text": f"r{n}", "priority": "low"} for n in range(3)], runtime=runtime)
    later = send_sms(RECIPIENT, "later", send_at=clock.now() + timedelta(hours=1), runtime=runtime)
    runtime.redis.flushall()

    assert ensure_redis_state(runtime) == 4

    assert sorted(runtime.redis.lrange(keys.ready(Priority.LOW), 0, -1)) == sorted(i.hex.encode() for i in ready_ids)
    assert runtime.redis.zscore(keys.DUE, f"2{later.hex}") == (clock.now() + timedelta(hours=1)).timestamp()
    assert ensure_redis_state(runtime) == 0


def test_after_a_flush_the_queues_are_rebuilt_once_whoever_notices(settings_for, redis_client, clock):
    runtimes = [build_runtime(settings_for(), waker=NoWaker(), clock=clock) for _ in range(4)]
    send_many([{"to": RECIPIENT, "text": f"r{n}"} for n in range(300)], runtime=runtimes[0])
    redis_client.flushall()
    rebuilt: list[int] = []
    barrier = threading.Barrier(len(runtimes))

    def notice(rt) -> None:
        barrier.wait()
        rebuilt.append(ensure_redis_state(rt))

    threads = [threading.Thread(target=notice, args=(rt,)) for rt in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(rebuilt) == [0, 0, 0, 300]
    assert ready_lengths(redis_client)[2] == 300
    for rt in runtimes:
        rt.close()


class Descheduled(redis.Redis):
    """A real Redis client of a process that the OS deschedules right after its ``pause_after``-th
    word with Redis (loading a script is not counted), until ``resume`` is set: the
    interleavings a busy host makes, on demand."""

    pause_after = 1
    resume = threading.Event()
    paused = threading.Event()
    words = 0

    def execute_command(self, *args, **options):
        answer = super().execute_command(*args, **options)
        if str(args[0]).upper().startswith("SCRIPT"):
            return answer
        self.words += 1
        if self.words == self.pause_after:
            self.paused.set()
            assert self.resume.wait(20), "never resumed"
        return answer


@pytest.mark.parametrize("pause_after", [1, 2, 3])
def test_a_process_descheduled_while_another_rebuilds_does_not_rebuild_again(settings_for, redis_url, redis_client, clock, pause_after):
    """The interleaving that rebuilt twice: one process sees the queues gone, stops, and goes on
    only after another has rebuilt them and let go of the lock."""
    first, late = (build_runtime(settings_for(), waker=NoWaker(), clock=clock) for _ in range(2))
    send_many([{"to": RECIPIENT, "text": f"r{n}"} for n in range(50)], runtime=first)
    redis_client.flushall()
    late.redis.close()
    late.redis = Descheduled.from_url(redis_url)
    late.redis.pause_after, late.redis.resume, late.redis.paused = pause_after, threading.Event(), threading.Event()
    rebuilt: dict[str, int] = {}
    behind = threading.Thread(target=lambda: rebuilt.__setitem__("late", ensure_redis_state(late)))
    behind.start()
    wait_until(lambda: late.redis.paused.is_set() or not behind.is_alive(), 10, 0.01, "the late process to stop")

    rebuilt["first"] = ensure_redis_state(first)
    late.redis.resume.set()
    behind.join(20)

    assert sorted(rebuilt.values()) == [0, 50]
    assert ready_lengths(redis_client)[2] == 50
    assert ensure_redis_state(first) == ensure_redis_state(late) == 0
    first.close()
    late.close()


class HeldRebuild(NoWaker):
    """Wake-ups of a process whose rebuild stops where it starts (declaring Celery's queues,
    under the lock) until ``resume`` is set."""

    def __init__(self) -> None:
        self.inside, self.resume = threading.Event(), threading.Event()

    def declare_queues(self) -> None:
        self.inside.set()
        assert self.resume.wait(20), "never resumed"


def test_each_flush_is_rebuilt_once_and_a_flush_during_a_rebuild_is_rebuilt_again(settings_for, redis_client, clock):
    """The sibling: once per flush, not once for ever. A flush that lands while a rebuild holds the
    lock takes the lock with it, so that rebuild is not taken for complete: the next process to
    notice rebuilds, once, and every waiting message has a pointer again."""
    held = HeldRebuild()
    rebuilder = build_runtime(settings_for(), waker=held, clock=clock)
    others = [build_runtime(settings_for(), waker=NoWaker(), clock=clock) for _ in range(2)]
    send_many([{"to": RECIPIENT, "text": f"r{n}"} for n in range(40)], runtime=others[0])
    redis_client.flushall()
    rebuilt: list[int] = []
    behind = threading.Thread(target=lambda: rebuilt.append(ensure_redis_state(rebuilder)))
    behind.start()
    assert held.inside.wait(10)
    assert ensure_redis_state(others[0]) == 0, "another process is rebuilding"

    redis_client.flushall()
    later = send_sms(RECIPIENT, "sent between the flush and the end of the rebuild", runtime=others[0])
    held.resume.set()
    behind.join(20)
    barrier = threading.Barrier(len(others))

    def notice(rt) -> None:
        barrier.wait()
        rebuilt.append(ensure_redis_state(rt))

    threads = [threading.Thread(target=notice, args=(rt,)) for rt in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(rebuilt) == [0, 41, 41], "the rebuild the flush cut short, then one more, once"
    assert later.hex.encode() in redis_client.lrange(keys.ready(Priority.STANDARD), 0, -1)
    assert ensure_redis_state(others[0]) == 0
    for rt in [rebuilder, *others]:
        rt.close()


def test_a_message_still_waiting_after_its_validity_is_expired(runtime, clock):
    ensure_redis_state(runtime)
    message_id = send_sms(RECIPIENT, "stale", validity=5, runtime=runtime)
    clock.advance(5 * 60)

    assert sweep(runtime).expired == 1
    assert message(runtime, message_id)["status"] == "expired"
    assert ready_lengths(runtime.redis)[2] == 1
    assert dispatch_batch(runtime).accepted == 0


def test_a_worker_thought_dead_sends_nothing_twice_and_its_late_answer_wins(settings_for, redis_client, sandbox, clock):
    slow = build_runtime(settings_for(http_concurrency=1), waker=NoWaker(), clock=clock)
    fast = build_runtime(settings_for(), waker=NoWaker(), clock=clock)
    ensure_redis_state(slow)
    sandbox.add_fault(endpoint="send_message", to="421900000001", fault="latency", ms=1500)
    stuck, waiting = send_many([{"to": "+421900000001", "text": "stuck"}, {"to": "+421900000002", "text": "waiting"}], runtime=slow)
    worker = threading.Thread(target=dispatch_batch, args=(slow,))
    worker.start()
    wait_until(lambda: [s["text"] for s in sandbox.submissions()] == ["stuck"], 10, 0.02, "the slow call to reach the provider")

    report = reclaim_after_the_lease(fast)
    assert (report.ambiguous, report.requeued) == (1, 1)
    assert message(fast, stuck)["status"] == "retrying"
    fast.clock.advance(1)
    from conftest import promote_once

    promote_once(fast)
    assert dispatch_batch(fast).accepted == 1
    worker.join()

    assert sorted(s["text"] for s in sandbox.submissions()) == ["stuck", "waiting"]
    late = message_history(stuck, fast.settings.resolved_database_url)
    assert late.message["status"] == "submitted"
    assert late.events[-1]["reason"].startswith("late answer, after the sweep took the claim back")
    assert message(fast, waiting)["status"] == "submitted"
    slow.close()
    fast.close()
