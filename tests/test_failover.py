"""Several accounts at once: routing, the breaker's failover, pauses, pinned messages and
multi-recipient orders, through the real dispatcher, adapters and sandbox over HTTP."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from accounts import drain, fault, message_row, statuses
from conftest import promote_once, wait_out_cooldown
from sqlalchemy import select

from sms_worker.dispatch.service import dispatch_batch
from sms_worker.lifecycle.status import Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_many, send_sms
from sms_worker.providers.pause import paused_reason
from sms_worker.runtime import build_deployment
from sms_worker.validation import InvalidField
from sms_worker.views import accounts_overview, check_accounts


def test_when_one_account_fails_half_its_requests_its_breaker_opens_and_the_others_carry_the_load(multi_runtime, sandbox, caplog):
    rt = multi_runtime(["telekom-sk", "dt-a2p", "dexatel"])
    fault(sandbox, provider="dexatel", endpoint="send", fault="http_status", status=503, probability=0.5)
    n = 300
    send_many([{"to": f"+49151{i:08d}", "text": f"failover {i:04d}"} for i in range(n)], runtime=rt)

    with caplog.at_level(logging.ERROR, logger="sms_worker.dispatch"):
        drain(rt)

    accepted = [s for s in sandbox.submissions() if s["accepted"]]
    per_text = Counter(s["text"] for s in accepted)
    assert len(per_text) == n and set(per_text.values()) == {1}, "every message accepted exactly once"
    assert statuses(rt)[Status.SUBMITTED.value] == n
    assert "circuit breaker OPEN for account dexatel" in caplog.text
    carried = Counter(s["provider"] for s in accepted)
    assert carried["dexatel"] < n / 3 < min(carried["telekom-sk"], carried["dt-a2p"])


def test_an_account_wide_fault_takes_the_account_out_of_routing_until_resumed(multi_runtime, sandbox):
    rt = multi_runtime(["dt-a2p", "dexatel"], dt_key="revoked-key")
    send_many([{"to": f"+49151{i:08d}", "text": f"wide {i}"} for i in range(40)], runtime=rt)

    drain(rt)

    assert "INVALID_API_KEY" in paused_reason(rt.redis, "dt-a2p")
    carried = Counter(s["provider"] for s in sandbox.submissions() if s["accepted"])
    assert carried == {"dexatel": 40}
    assert statuses(rt) == {Status.SUBMITTED.value: 40}, "no retries burnt, nothing failed"
    deployment = build_deployment(rt.settings)
    overview = {account.name: account for account in accounts_overview(deployment)}
    deployment.close()
    assert overview["dt-a2p"].paused and not overview["dexatel"].paused
    checks = {result.name: result for result in check_accounts(rt.accounts)}
    assert checks["dexatel"].ok and not checks["dt-a2p"].ok
    assert "account-wide" in checks["dt-a2p"].detail


def test_a_message_that_names_its_account_waits_for_it_instead_of_failing_over(multi_runtime, sandbox):
    rt = multi_runtime(["telekom-sk", "dexatel"])
    rt.breaker("dexatel").record([True] * 5, "HTTP_503: test")
    send_sms("+421901234567", "only via dexatel", account="dexatel", runtime=rt)
    send_sms("+421901234568", "anyone", runtime=rt)

    promote_once(rt)
    report = dispatch_batch(rt)

    assert report.accepted == 1 and report.deferred == 1
    [submission] = [s for s in sandbox.submissions() if s["accepted"]]
    assert submission["provider"] == "telekom-sk" and submission["text"] == "anyone"
    wait_out_cooldown(rt.redis, rt.breaker("dexatel"))  # dexatel gets one probe, the pinned message
    drain(rt)
    assert {s["text"]: s["provider"] for s in sandbox.submissions() if s["accepted"]} == {"anyone": "telekom-sk", "only via dexatel": "dexatel"}
    assert rt.breaker("dexatel").state().state == "closed", "a successful probe closes the breaker"


def test_a_message_no_account_may_carry_is_refused_at_enqueue_or_denied_with_the_reason(multi_runtime, sandbox):
    before = multi_runtime(["dt-a2p"])
    message_id = send_sms("+4915123456789", "from a stranger", sender="STRANGER", runtime=before)
    rt = multi_runtime(["dt-a2p"], extra='senders = ["+4915112345678"]\n')  # extends the last account's table
    with pytest.raises(InvalidField, match="sender: no account can carry it: account dt-a2p: sender 'STRANGER' is not verified"):
        send_sms("+4915123456789", "from a stranger", sender="STRANGER", runtime=rt)

    drain(rt)  # the message queued before the verified list was configured

    with rt.engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
    assert (row.status, row.error_code) == (Status.REJECTED.value, "NO_ROUTE")
    assert "account dt-a2p: sender 'STRANGER' is not verified" in row.error_text
    assert sandbox.submissions() == []


def test_messages_with_the_same_text_travel_as_one_multi_recipient_order(multi_runtime, sandbox):
    rt = multi_runtime(["session-key"])
    send_many(
        [{"to": f"+39349{i:07d}", "text": "same for all"} for i in range(30)] + [{"to": f"+39348{i:07d}", "text": "another text"} for i in range(5)],
        runtime=rt,
    )

    drain(rt)

    accepted = [s for s in sandbox.submissions() if s["accepted"]]
    assert len(accepted) == 35
    orders = Counter(s["params"]["order_id"] for s in accepted)
    assert sorted(orders.values()) == [5, 30]
    assert statuses(rt) == {Status.SUBMITTED.value: 35}


def test_a_retry_after_a_transient_fault_goes_to_the_next_account(multi_runtime, sandbox):
    rt = multi_runtime(["dexatel", "telekom-sk"], default={"dexatel": 1, "telekom-sk": 1})
    message_id = send_sms("+421901234567", "second account lucky", runtime=rt)
    first = rt.router.candidates("+421901234567", message_id)[0]
    endpoint = {"dexatel": "send", "telekom-sk": "send_message"}[first]
    fault(sandbox, provider=first, endpoint=endpoint, to="+421901234567", fault="http_status", status=503, times=1)

    drain(rt)

    refused = [s["provider"] for s in sandbox.submissions() if not s["accepted"]]
    [accepted] = [s["provider"] for s in sandbox.submissions() if s["accepted"]]
    assert refused == [first] and accepted != first, "the retry went to the other account"
    with rt.engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
    assert (row.status, row.attempts, row.account) == (Status.SUBMITTED.value, 2, accepted)
    assert rt.breaker(refused[0]).state().state == "closed"


def first_account(rt, recipient: str, message_id) -> tuple[str, str]:
    name = rt.router.candidates(recipient, message_id)[0]
    return name, {"dexatel": "send", "telekom-sk": "send_message"}[name]


def test_after_a_timeout_the_retry_stays_on_the_account_that_may_have_the_message(multi_runtime, sandbox):
    rt = multi_runtime(["dexatel", "telekom-sk"], settings={"http_timeout_seconds": 0.6})
    message_id = send_sms("+421901234567", "maybe delivered", runtime=rt)
    first, endpoint = first_account(rt, "+421901234567", message_id)
    fault(sandbox, provider=first, endpoint=endpoint, fault="timeout", seconds=1, times=1)

    drain(rt)

    assert {s["provider"] for s in sandbox.submissions()} == {first}, "never sent through the other account"
    row = message_row(rt, message_id)
    assert (row.status, row.attempts, row.pinned_account, row.requested_account) == (Status.SUBMITTED.value, 2, first, None)


def test_with_on_ambiguous_give_up_a_timed_out_message_is_unknown_and_not_sent_again(multi_runtime, sandbox):
    rt = multi_runtime(["dexatel", "telekom-sk"], settings={"http_timeout_seconds": 0.6, "on_ambiguous": "give-up"})
    message_id = send_sms("+421901234567", "maybe delivered", runtime=rt)
    first, endpoint = first_account(rt, "+421901234567", message_id)
    fault(sandbox, provider=first, endpoint=endpoint, fault="timeout", seconds=1, times=1)

    drain(rt)

    assert len(sandbox.submissions()) == 1
    row = message_row(rt, message_id)
    assert (row.status, row.error_code) == (Status.UNKNOWN.value, "TIMEOUT")
    assert "may have the message" in row.error_text


def test_a_failed_multi_recipient_order_counts_once_against_the_breaker(multi_runtime, sandbox):
    rt = multi_runtime(["session-key"])
    fault(sandbox, provider="session-key", endpoint="sms", fault="http_status", status=503, times=1)
    send_many([{"to": f"+39349{i:07d}", "text": "one order"} for i in range(10)], runtime=rt)

    promote_once(rt)
    report = dispatch_batch(rt)

    assert report.retrying == 10
    state = rt.breaker("session-key").state()
    assert (state.state, state.recent_failures, state.recent_calls) == ("closed", 1, 1)


def test_a_message_naming_an_account_that_is_not_configured_is_denied(multi_runtime, sandbox):
    rt = multi_runtime(["telekom-sk", "dexatel"])
    message_id = send_sms("+421901234567", "to a gone account", account="dexatel", runtime=rt)
    rt.accounts.pop("dexatel")  # as after the providers file dropped it

    drain(rt)

    row = message_row(rt, message_id)
    assert (row.status, row.error_code) == (Status.REJECTED.value, "NO_ROUTE")
    assert "'dexatel', which is not configured" in row.error_text


def test_a_probe_that_the_rate_limit_holds_back_leaves_the_next_probe_free(multi_runtime, sandbox):
    from sms_worker.ratelimit import TokenBucket

    rt = multi_runtime(["telekom-sk", "dexatel"], rates={"dexatel": 0.01})
    rt.breaker("dexatel").record([True] * 5, "HTTP_503: test")
    wait_out_cooldown(rt.redis, rt.breaker("dexatel"))  # the next message to dexatel is its probe
    account = rt.accounts["dexatel"]
    TokenBucket(rt.redis, "dexatel", account.rate, account.burst).acquire([account.burst])  # no token left
    send_sms("+421901234567", "probe", account="dexatel", runtime=rt)

    promote_once(rt)
    report = dispatch_batch(rt)

    assert (report.accepted, report.deferred) == (0, 1)
    assert rt.breaker("dexatel").admit() == 1, "the probe slot was given back"
