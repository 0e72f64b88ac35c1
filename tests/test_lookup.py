"""Issue 15, items 4 and 5: asking Telefoon "do you have this message?" after an ambiguous attempt.

Item 4: the question works at an account's full rate (it reads only the lost attempt's window of
the listing, found by position), has a deadline of its own, sends nothing, uses no retry, writes
no attempt and never counts against the breaker; a key refused on the listing pauses the account.
Item 5: a provider id reused after a provider restart names the message attempted last, on the
adoption's path and the poller's alike, and a near match in the listing is never "not found".

Real dispatcher, adapter, Redis and database, over HTTP against the sandbox; the sandbox and the
runtime share one FakeClock, so time passes for both as the test says (the sandbox's answers
carry its clock in ``Date``), while the held send is held in real time past a 0.3 s timeout.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from accounts import fault, message_row, unsettled, write_providers
from conftest import ShutsDownAfter, ThreadedSandbox, promote_once, wait_until
from sqlalchemy import event

from sms_worker.clock import FakeClock
from sms_worker.dispatch.receipts import poll_statuses
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.lifecycle.status import Status
from sms_worker.producer import send_sms
from sms_worker.providers.pause import paused_reason
from sms_worker.ratelimit import SendWindow
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.views import message_history

HELD = {"fault": "timeout", "seconds": 1.5, "times": 1}
"""A send the sandbox carries out, then answers after the client gave up (timeout 0.3 s)."""
SETTINGS = {"http_timeout_seconds": 0.3, "retry_backoff_seconds": (1.0,), "breaker_cooldown_seconds": 0.5}
KEY = {"X-API-Key": "sandbox-telefoon-key"}


@pytest.fixture
def clock() -> FakeClock:
    """Ours and the provider's: time passes for both."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def provider(clock):
    with ThreadedSandbox(clock=clock) as server:
        yield server


@pytest.fixture
def telefoon(settings_for, redis_client, provider, clock, tmp_path):
    """Makes a runtime with one Telefoon account on ``provider``, on the shared clock."""
    runtimes = []

    def make(rate: float = 1000, **settings):
        path = write_providers(tmp_path / "providers.toml", provider.url, ["telefoon"], rates={"telefoon": rate})
        runtimes.append(build_runtime(settings_for(providers_file=path, **{**SETTINGS, **settings}), waker=NoWaker(), clock=clock))
        return runtimes[-1]

    yield make
    for rt in runtimes:
        rt.close()


def drain(rt, clock: FakeClock, timeout: float = 60) -> None:
    """Dispatch until every message is settled, the shared clock a second further each round."""
    deadline = time.monotonic() + timeout
    while unsettled(rt):
        assert time.monotonic() < deadline, f"{unsettled(rt)} message(s) still unsettled after {timeout}s"
        promote_once(rt)
        dispatch_batch(rt)
        clock.advance(1)


def send_held(rt, provider, number: str, text: str, **options) -> object:
    """A message whose first send the provider takes but answers too late: it ends unsure."""
    fault(provider, provider="telefoon", endpoint="send", to=number.lstrip("+"), **HELD)
    message_id = send_sms(number, text, runtime=rt, **options)
    promote_once(rt)
    dispatch_batch(rt)
    assert message_row(rt, message_id).unsure_since is not None, "the held send is an ambiguous attempt"
    return message_id


def traffic(provider, count: int, **fields) -> None:
    """``count`` messages another user of the key sends now (not in the submission log)."""
    httpx.post(f"{provider.url}/telefoon/_sandbox/traffic", json={"count": count, **fields}, timeout=30).raise_for_status()


def accepted_to(provider, number: str) -> list[dict]:
    return [s for s in provider.submissions() if s["accepted"] and str(s["to"]).lstrip("+") == number.lstrip("+")]


def history(rt, message_id) -> list[dict]:
    return message_history(message_id, rt.settings.resolved_database_url).events


def reasons(rt, message_id) -> list[str]:
    return [event["reason"] for event in history(rt, message_id)]


# --- item 4: a look-up at an account's full rate ------------------------------------------------


def test_on_a_busy_account_the_lost_attempts_window_is_found_and_the_copy_adopted(telefoon, provider, clock):
    """The issue's case: thousands of messages listed before and after the lost attempt (the old
    look-up read at most 2,000 back from the newest and failed). Only the window is read."""
    rt = telefoon()
    traffic(provider, 4000)
    clock.advance(60)
    message_id = send_held(rt, provider, "+31612345601", "Your code is 4821")
    clock.advance(60)
    traffic(provider, 4000)
    traffic(provider, 1, to="+31612345601", body="Your code is 4821")  # a later copy, another sender's
    listings: list[httpx.Request] = []
    rt.http_client.event_hooks["request"].append(lambda request: listings.append(request) if request.method == "GET" else None)

    drain(rt, clock)

    [sent] = accepted_to(provider, "+31612345601")
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)
    assert row.status in (Status.SUBMITTED.value, Status.DELIVERED.value)
    assert f"adopted as {sent['message_id']}, not sent again" in reasons(rt, message_id)[-1]
    assert len(listings) <= 20, f"{len(listings)} listing requests for 8,002 listed messages: the window is found, not read through"


def test_a_key_refused_on_the_listing_pauses_the_account_and_nothing_is_sent(telefoon, provider, clock):
    rt = telefoon()
    message_id = send_held(rt, provider, "+31612345602", "Your code is 1602")
    fault(provider, provider="telefoon", endpoint="list", fault="error_code", code="20003")

    clock.advance(2)
    promote_once(rt)
    dispatch_batch(rt)

    assert "20003" in (paused_reason(rt.redis, "telefoon") or ""), "a 401 on the listing is account-wide, as on a send"
    row = message_row(rt, message_id)
    assert (row.status, row.attempts) == (Status.RETRYING.value, 1) and row.unsure_since is not None
    assert len(accepted_to(provider, "+31612345602")) == 1
    last = reasons(rt, message_id)[-1]
    assert "asking telefoon whether it has the message failed (20003" in last and "account paused" in last
    assert rt.breaker("telefoon").state().recent_failures == 1, "only the held send counted against the breaker"


def test_a_failing_look_up_never_opens_the_breaker_uses_no_retry_and_writes_no_attempt(telefoon, provider, clock):
    """Two faults in a row would open the breaker, and one retry is all the message has: four
    failed questions (HTTP 503 on the listing) cost neither, and the fifth adopts the copy."""
    rt = telefoon(breaker_consecutive_failures=2, max_retries=1)
    message_id = send_held(rt, provider, "+31612345603", "Your code is 1603")
    fault(provider, provider="telefoon", endpoint="list", fault="http_status", status=503, times=4)

    drain(rt, clock)

    row = message_row(rt, message_id)
    assert (row.status in (Status.SUBMITTED.value, Status.DELIVERED.value), row.attempts, row.possible_duplicate) == (True, 1, False)
    assert len(accepted_to(provider, "+31612345603")) == 1
    events = history(rt, message_id)
    failed = [e["reason"] for e in events if "whether it has the message failed (" in e["reason"]]
    # Four 503s, each a failed question asked again; on a starved host a question may also time
    # out reading an answer the sandbox already gave (the fault spent): then it is that one's line.
    assert len(failed) >= 4 and sum("(HTTP_503" in reason for reason in failed) >= 3, failed
    assert [e["reason"] for e in events if e["status"] == Status.CALLING.value] == ["attempt 1 via telefoon"]
    state = rt.breaker("telefoon").state()
    assert (state.state, state.recent_failures) == ("closed", 1)


def test_a_batch_that_stops_while_a_question_is_asked_keeps_the_copy_it_found(telefoon, provider, clock):
    """The batch asks about an unsure message, then fails to hand the next call to a thread (the
    worker's pool shut down): the question's answer is waited for, and the copy it found is
    adopted, not asked about or sent again; the call that never left is not counted."""
    rt = telefoon()
    unsure = send_held(rt, provider, "+31612345604", "Your code is 1604")
    clock.advance(2)
    other = send_sms("+31612345605", "Your code is 1605", runtime=rt)
    promote_once(rt)
    rt._pool = ShutsDownAfter(rt.http_pool, calls=1)

    dispatch_batch(rt)

    adopted, never_left = message_row(rt, unsure), message_row(rt, other)
    assert (adopted.status in (Status.SUBMITTED.value, Status.DELIVERED.value), adopted.attempts, adopted.possible_duplicate) == (True, 1, False)
    assert adopted.provider_message_id is not None and len(accepted_to(provider, "+31612345604")) == 1
    assert (never_left.status, never_left.attempts) == (Status.QUEUED.value, 0)
    assert accepted_to(provider, "+31612345605") == []


def test_a_provider_whose_clock_is_hours_ahead_is_searched_on_its_own_clock(settings_for, redis_client, clock, tmp_path):
    """The window is put on the provider's clock, read from its answers' Date: a provider three
    hours ahead still has its copy found, not resent."""
    with ThreadedSandbox(clock=FakeClock(clock.now() + timedelta(hours=3))) as ahead:
        path = write_providers(tmp_path / "providers.toml", ahead.url, ["telefoon"])
        rt = build_runtime(settings_for(providers_file=path, **SETTINGS), waker=NoWaker(), clock=clock)
        try:
            message_id = send_held(rt, ahead, "+31612345610", "Your code is 1610")
            drain(rt, clock)
            [sent] = accepted_to(ahead, "+31612345610")
            row = message_row(rt, message_id)
        finally:
            rt.close()

    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)


# --- item 5: a provider id reused after a restart; near matches ---------------------------------


def restart(provider, clock) -> ThreadedSandbox:
    """The provider restarts on the same port, its numbering from the start again."""
    provider.__exit__()
    return ThreadedSandbox(clock=clock, port=provider.port).__enter__()


def test_an_id_an_older_message_holds_does_not_block_adopting_the_newer_one(telefoon, provider, clock):
    """The issue's case: the older holder made the copy look taken, so the newer message was sent
    again and recorded as "provider had not": a silent double."""
    rt = telefoon()
    older = send_sms("+31612345604", "Your code is 1604", runtime=rt)
    drain(rt, clock)
    clock.advance(3600)
    restarted = restart(provider, clock)
    try:
        newer = send_held(rt, restarted, "+31612345605", "Your code is 1605")
        drain(rt, clock)
        [sent] = accepted_to(restarted, "+31612345605")
    finally:
        restarted.__exit__()

    assert sent["message_id"] == message_row(rt, older).provider_message_id, "the restarted provider reused the id"
    row = message_row(rt, newer)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)
    assert "not sent again" in reasons(rt, newer)[-1]


def test_a_status_check_of_the_older_holder_of_a_reused_id_does_not_give_it_the_newer_ones_status(telefoon, provider, clock):
    rt = telefoon(status_check_delays_seconds=(1.0,))
    older = send_sms("+31612345606", "Your code is 1606", runtime=rt)
    drain(rt, clock)
    restarted = restart(provider, clock)
    try:
        clock.advance(60)
        newer = send_sms("+31612345607", "Your code is 1607", runtime=rt)
        drain(rt, clock)
        assert message_row(rt, newer).provider_message_id == message_row(rt, older).provider_message_id
        clock.advance(600)  # the sandbox has delivered the newer message
        poll_statuses(rt)
    finally:
        restarted.__exit__()

    assert message_row(rt, newer).status == Status.DELIVERED.value
    row = message_row(rt, older)
    assert (row.status, row.delivery) == (Status.SUBMITTED.value, "queued"), "the older holder keeps what its own acceptance said"


@pytest.mark.parametrize("policy", ["resend", "give-up"])
def test_a_near_match_in_the_listing_is_never_taken_for_not_found(telefoon, provider, clock, policy):
    """The provider lists the recipient's copy with its text rewritten (diacritics folded, spaces
    trimmed): it may be ours. Resent by policy, it is flagged; under give-up it is not resent."""
    rt = telefoon()
    message_id = send_held(rt, provider, "+31612345608", "Votre table est prête", on_ambiguous=policy)
    [held] = accepted_to(provider, "+31612345608")
    httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{held['message_id']}", headers=KEY).raise_for_status()
    traffic(provider, 1, to="+31612345608", body=" Votre table est prete")

    drain(rt, clock)

    row = message_row(rt, message_id)
    if policy == "resend":
        assert len(accepted_to(provider, "+31612345608")) == 2
        assert (row.status in (Status.SUBMITTED.value, Status.DELIVERED.value), row.possible_duplicate) == (True, True)
        assert "POSSIBLE DUPLICATE" in reasons(rt, message_id)[-1]
    else:
        assert len(accepted_to(provider, "+31612345608")) == 1
        assert (row.status, row.error_code, row.possible_duplicate) == (Status.UNKNOWN.value, "NEAR_MATCH", False)
    assert any("a message to this recipient" in r and "rewrites text" in r for r in reasons(rt, message_id))


def test_a_copy_another_message_took_in_the_same_window_is_still_not_adopted(telefoon, provider, clock):
    """The window rule cuts both ways: two messages with one text to one number, sent in the same
    window, the second's lost: the copy the first holds is not adopted again."""
    rt = telefoon()
    first = send_sms("+31612345609", "Your table is ready", runtime=rt)
    promote_once(rt)
    dispatch_batch(rt)
    later = send_held(rt, provider, "+31612345609", "Your table is ready")

    drain(rt, clock)

    copies = [s["message_id"] for s in accepted_to(provider, "+31612345609")]
    assert len(copies) == 2
    assert [message_row(rt, first).provider_message_id, message_row(rt, later).provider_message_id] == copies


# --- review of items 4 and 5 ------------------------------------------------------------------


class BusyPool:
    """Work that holds threads of a runtime's HTTP pool until released: the pool busy with other
    work (status checks of a slow provider), as it is in a starved process."""

    def __init__(self, rt) -> None:
        self._rt = rt
        self._gate = threading.Event()

    def hold(self) -> None:
        """One more task for the pool: it takes the next free thread and keeps it."""
        self._rt.http_pool.submit(self._gate.wait, 60)

    def release(self) -> None:
        self._gate.set()


def in_background(work) -> Future:
    done: Future = Future()

    def run() -> None:
        try:
            done.set_result(work())
        except BaseException as error:  # noqa: BLE001 - handed to the test through the future
            done.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return done


def status_is(rt, message_id, status: Status):
    return lambda: message_row(rt, message_id).status == status.value


def on_listing(rt) -> threading.Event:
    """Set when the runtime first asks the provider's listing."""
    asked = threading.Event()
    rt.http_client.event_hooks["request"].append(lambda request: asked.set() if request.method == "GET" else None)
    return asked


def test_a_call_handed_over_later_than_a_look_up_would_search_is_not_made(telefoon, provider, clock):
    """Review item 1: a call recorded as started waits 30 s (the clock's) for the pool's only
    thread, busy with other work. Made then and lost (held past its timeout), its copy would lie
    outside the window the look-up searches: "not there", and a second SMS, unflagged. It is not
    made: the message goes back, then is sent and its copy adopted, once."""
    rt = telefoon(http_concurrency=1)
    number = "+31612345611"
    fault(provider, provider="telefoon", endpoint="send", to=number.lstrip("+"), **HELD)
    message_id = send_sms(number, "Your code is 1611", runtime=rt)
    promote_once(rt)
    pool = BusyPool(rt)
    pool.hold()
    dispatching = in_background(lambda: dispatch_batch(rt))
    wait_until(status_is(rt, message_id, Status.CALLING), 10, 0.01, "the call recorded as started")
    clock.advance(30)
    pool.release()
    dispatching.result(30)

    row = message_row(rt, message_id)
    assert (row.status, row.attempts) == (Status.QUEUED.value, 0), "not made, not counted"
    drain(rt, clock)

    [sent] = accepted_to(provider, number)
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)
    assert any("not sent: the call would have left 30.0 s after it was recorded as started" in r for r in reasons(rt, message_id))


def test_a_question_that_arrives_meanwhile_does_not_take_the_slot_of_a_call_recorded_as_started(telefoon, provider, clock):
    """Review item 1, the cause: one slot (http_concurrency 1); a call recorded as started waits
    for its place in the account's send window (another worker took the second); a high-priority
    question arrives meanwhile, its listing slow. The slot is the call's, which leaves on time;
    then the question runs, and the clock jumps 30 s, which a call still waiting would not survive
    (before: made 32 s late, lost, not found, sent again unflagged)."""
    rt = telefoon(rate=1, http_concurrency=1)
    send_held(rt, provider, "+31612345612", "Your code is 1612", priority="high")
    number = "+31612345613"
    fault(provider, provider="telefoon", endpoint="send", to=number.lstrip("+"), **HELD)
    message_id = send_sms(number, "Your code is 1613", runtime=rt)
    promote_once(rt)  # the question is due a second later, on the clock
    window = SendWindow(rt.redis, "telefoon", 1)
    wait_until(lambda: window.admit([1]).granted == 1, 5, 0.02, "another worker's place in the send window")
    fault(provider, provider="telefoon", endpoint="list", fault="latency", ms=250, times=1)
    listing = on_listing(rt)
    dispatching = in_background(lambda: dispatch_batch(rt))
    wait_until(status_is(rt, message_id, Status.CALLING), 10, 0.01, "the call recorded as started")
    clock.advance(2)
    promote_once(rt)
    assert listing.wait(10), "the question was asked"
    clock.advance(30)
    dispatching.result(30)
    drain(rt, clock)

    [sent] = accepted_to(provider, number)
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)
    assert not any(r.startswith("not sent:") for r in reasons(rt, message_id)), "the call left on time"


def test_a_copy_of_another_message_in_the_margin_of_the_search_is_not_adopted(telefoon, provider, clock):
    """Review item 2a: the listing is searched wider than the lost attempt's window (clock slack,
    the precision of the provider's times); a copy there may be another message's, so the
    messages that may hold it are those attempted up to an attempt's span before what was
    searched, not before the window."""
    rt = telefoon(lookup_clock_slack_seconds=5)
    number = "+31612345614"
    first = send_sms(number, "Your table is ready", runtime=rt)
    promote_once(rt)
    dispatch_batch(rt)
    clock.advance(5)  # past an attempt's span (3.3 s), within the slack
    later = send_held(rt, provider, number, "Your table is ready")

    drain(rt, clock)

    copies = [s["message_id"] for s in accepted_to(provider, number)]
    assert len(copies) == 2
    assert [message_row(rt, first).provider_message_id, message_row(rt, later).provider_message_id] == copies


def two_alike_held(rt, provider, number: str, text: str, dispatches: int) -> list:
    """Two messages alike whose sends both ended unsure, of which only the first reached the
    provider (the second's copy is erased)."""
    fault(provider, provider="telefoon", endpoint="send", to=number.lstrip("+"), fault="timeout", seconds=1.5, times=2)
    ids = [send_sms(number, text, runtime=rt) for _ in range(2)]
    promote_once(rt)
    for _ in range(dispatches):
        dispatch_batch(rt)
    assert all(message_row(rt, message_id).unsure_since is not None for message_id in ids)
    held = accepted_to(provider, number)
    httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{held[1]['message_id']}", headers=KEY).raise_for_status()
    return ids


def assert_one_adopted_one_sent_again(rt, provider, number: str, ids: list) -> list:
    """The rule for alike messages: each copy is adopted by one of them; the other is sent again,
    one SMS for each message here, and flagged a possible duplicate all the same: a listing
    without its copy proves nothing of a lost request the provider handles after the window."""
    rows = sorted((message_row(rt, message_id) for message_id in ids), key=lambda row: row.attempts)
    copies = [s["message_id"] for s in accepted_to(provider, number)]
    assert [row.attempts for row in rows] == [1, 2], "one adopted, one sent again"
    assert [row.provider_message_id for row in rows] == [copies[0], copies[2]]
    assert [row.possible_duplicate for row in rows] == [False, True]
    return rows


def test_two_alike_messages_of_which_one_copy_reached_the_provider_adopt_it_once(telefoon, provider, clock):
    """Review item 2b: asked in one batch, both found the one copy and both adopted it; one
    message was never sent. (The two questions are made to check at once, as they may: now one
    is asked after the other.)"""
    rt = telefoon()
    number = "+31612345615"
    ids = two_alike_held(rt, provider, number, "Your table is ready", dispatches=1)

    with ChecksMeet(rt.engine, wait=2):
        drain(rt, clock)

    assert_one_adopted_one_sent_again(rt, provider, number, ids)


class ChecksMeet:
    """Makes two questions look at once: the first to have checked which copies our messages
    hold waits (up to ``wait`` seconds) until another has checked too, before it goes on. Two
    questions asked at once then both find a copy free, whatever their threads' timing; a
    question asked alone goes on after the wait."""

    def __init__(self, engine, wait: float) -> None:
        self._engine, self._wait = engine, wait
        self._first: int | None = None
        self._other_checked = threading.Event()

    def __enter__(self) -> ChecksMeet:
        event.listen(self._engine, "after_cursor_execute", self._checked)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self._engine, "after_cursor_execute", self._checked)

    def _checked(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if "provider_message_id IN" not in statement or "last_attempt_at >=" not in statement:
            return
        if self._first is None:
            self._first = threading.get_ident()
            self._other_checked.wait(self._wait)
        elif threading.get_ident() != self._first:
            self._other_checked.set()


def test_two_workers_asking_at_once_about_alike_messages_adopt_the_one_copy_once(telefoon, provider, clock):
    """Review item 2b, two workers: each asks about one of the two at once, and both find the
    copy free. The second adoption is fenced out; asked again, it finds the copy held, and it is
    sent again."""
    workers = [telefoon(batch_size=1), telefoon(batch_size=1)]
    number = "+31612345616"
    ids = two_alike_held(workers[0], provider, number, "Your table is ready", dispatches=2)
    clock.advance(2)
    promote_once(workers[0])
    with ChecksMeet(workers[0].engine, wait=20):
        asking = [in_background(lambda rt=rt: dispatch_batch(rt)) for rt in workers]
        for done in asking:
            done.result(60)

    drain(workers[0], clock)

    _, resent = assert_one_adopted_one_sent_again(workers[0], provider, number, ids)
    assert any("COPY_TAKEN" in r for r in reasons(workers[0], resent.id)), "the second adoption was fenced out"


@pytest.mark.parametrize("policy", ["resend", "give-up"])
def test_a_listed_copy_without_its_text_may_be_the_message_never_not_there(telefoon, provider, clock, policy):
    """Review item 3: the schema does not require ``body``; a copy to the recipient from our
    sender listed without it was skipped, so the message was "not there" and sent again,
    unflagged. It is a near match: flagged if resent, not resent under give-up."""
    rt = telefoon()
    number = "+31612345617"
    message_id = send_held(rt, provider, number, "Your code is 1617", on_ambiguous=policy)
    [held] = accepted_to(provider, number)
    httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{held['message_id']}", headers=KEY).raise_for_status()
    traffic(provider, 1, to=number, body="Your code is 1617", body_listed=False)

    drain(rt, clock)

    row = message_row(rt, message_id)
    if policy == "resend":
        assert (len(accepted_to(provider, number)), row.possible_duplicate) == (2, True)
    else:
        assert (len(accepted_to(provider, number)), row.status, row.error_code) == (1, Status.UNKNOWN.value, "NEAR_MATCH")
    assert any("a message to this recipient" in r and "its text is not listed" in r for r in reasons(rt, message_id))


@pytest.mark.parametrize(("sender", "other"), [(None, "OTHERCO"), ("Shop", "ACME")], ids=["default-sender", "own-sender"])
def test_a_copy_from_another_sender_is_not_adopted(telefoon, provider, clock, sender, other):
    """Review item 3: another user of the key sent the same text to the same number (from
    another sender than the message's own or, without one, the account's default): not ours.
    Adopted, the message was never sent."""
    rt = telefoon()
    number = "+31612345618" if sender is None else "+31612345619"
    message_id = send_held(rt, provider, number, "Your table is ready", **({"sender": sender} if sender else {}))
    [held] = accepted_to(provider, number)
    httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{held['message_id']}", headers=KEY).raise_for_status()
    traffic(provider, 1, to=number, body="Your table is ready", **{"from": other})

    drain(rt, clock)

    [_, resent] = accepted_to(provider, number)
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (resent["message_id"], 2, True)


def test_messages_erased_while_the_listing_is_searched_do_not_hide_the_copy(telefoon, provider, clock):
    """Review item 3: 60 messages before the window are erased between the search for its first
    position and the page read from there; the copy moved to the page before. It is found."""
    rt = telefoon()
    traffic(provider, 250)
    clock.advance(60)
    number = "+31612345620"
    message_id = send_held(rt, provider, number, "Your code is 1620")
    clock.advance(60)
    traffic(provider, 100)
    erased = threading.Event()

    def erase_before_the_page_read(request: httpx.Request) -> None:
        if request.method == "GET" and request.url.params.get("page_size") == "100" and not erased.is_set():
            erased.set()
            listed = httpx.get(f"{provider.url}/telefoon/v1/sms/messages", params={"page": 1, "page_size": 60}, headers=KEY).json()
            for message in listed["messages"]:
                httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{message['id']}", headers=KEY).raise_for_status()

    rt.http_client.event_hooks["request"].append(erase_before_the_page_read)
    drain(rt, clock)

    assert erased.is_set()
    [sent] = accepted_to(provider, number)
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.attempts, row.possible_duplicate) == (sent["message_id"], 1, False)


def test_a_resend_over_a_near_match_that_is_not_made_leaves_the_row_as_it_was(telefoon, provider, clock):
    """Review item 4: the calling statement flags a resend over a near match (in case its
    worker is lost during the call); when the call is then not made (handed over too late),
    the row was left flagged, unsure since an attempt that never went out, and the history never
    said why. Now it is as before the call, the near match in its history; asked again, the near
    match is found again, and the resend that goes out is flagged and says why."""
    rt = telefoon(http_concurrency=2)
    number = "+31612345621"
    message_id = send_held(rt, provider, number, "Votre table est prête")
    before = message_row(rt, message_id)
    [held] = accepted_to(provider, number)
    httpx.delete(f"{provider.url}/telefoon/v1/sms/messages/{held['message_id']}", headers=KEY).raise_for_status()
    traffic(provider, 1, to=number, body=" Votre table est prete")
    fault(provider, provider="telefoon", endpoint="list", fault="latency", ms=250, times=1)
    listing = on_listing(rt)
    pool = BusyPool(rt)
    pool.hold()  # one thread busy; the question takes the other
    clock.advance(2)
    promote_once(rt)
    dispatching = in_background(lambda: dispatch_batch(rt))
    assert listing.wait(10), "the question was asked"
    pool.hold()  # the question's thread goes to other work once it is answered
    wait_until(status_is(rt, message_id, Status.CALLING), 10, 0.01, "the resend recorded as started")
    clock.advance(30)
    pool.release()
    dispatching.result(30)

    row = message_row(rt, message_id)
    assert (row.status, row.attempts, row.possible_duplicate, row.unsure_since) == (Status.RETRYING.value, 1, False, before.unsure_since)
    last = reasons(rt, message_id)[-1]
    assert "not sent: the call would have left" in last and "a message to this recipient" in last

    drain(rt, clock)

    row = message_row(rt, message_id)
    assert (len(accepted_to(provider, number)), row.attempts, row.possible_duplicate) == (2, 2, True)
    started = [e["reason"] for e in history(rt, message_id) if e["status"] == Status.CALLING.value]
    assert started == ["attempt 1 via telefoon", started[1]] and "a near match" in started[1]
