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

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from accounts import fault, message_row, unsettled, write_providers
from conftest import ThreadedSandbox, promote_once

from sms_worker.clock import FakeClock
from sms_worker.dispatch.receipts import poll_statuses
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.producer import send_sms
from sms_worker.providers.pause import paused_reason
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.status import Status
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

    def make(**settings):
        path = write_providers(tmp_path / "providers.toml", provider.url, ["telefoon"])
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
    assert sum("whether it has the message failed (HTTP_503" in e["reason"] for e in events) == 4
    assert [e["reason"] for e in events if e["status"] == Status.CALLING.value] == ["attempt 1 via telefoon"]
    state = rt.breaker("telefoon").state()
    assert (state.state, state.recent_failures) == ("closed", 1)


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
