"""Issue 9, kind 12: a timeout must not silently become a second SMS.

After an ambiguous attempt (the request went out, no clear answer came back) an account whose
API can say whether it has the message (Telefoon's outbound listing) is asked before anything is
sent again; elsewhere the message's policy decides, resend (at least once) or give-up (at most
once), and every such attempt is in the history and in ``stats``. Through the real dispatcher,
adapters and sandbox over HTTP; the sandbox holds one send past the client's timeout, as a
provider that takes the message and answers too late would.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from accounts import drain, fault, message_row, unsettled
from conftest import process_env, promote_once
from forked import run_cli

from sms_worker.config import Settings
from sms_worker.dispatch.policy import Attempt, RetryPolicy
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.errors import InvalidField
from sms_worker.lifecycle.status import Status
from sms_worker.producer import send_sms
from sms_worker.providers.accounts import ProvidersFileError, parse_providers
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.views import message_history

HELD = {"fault": "timeout", "seconds": 1.5, "times": 1}
"""A send the sandbox carries out, then answers after the client gave up (timeout 0.3 s)."""
FAST = {"http_timeout_seconds": 0.3}


def accepted_to(sandbox, number: str) -> list[dict]:
    return [s for s in sandbox.submissions() if s["accepted"] and str(s["to"]).lstrip("+") == number.lstrip("+")]


def reasons(rt, message_id) -> list[str]:
    return [event["reason"] for event in message_history(message_id, rt.settings.resolved_database_url).events]


def stats(rt) -> dict:
    found = run_cli("stats", "--json", env=process_env(rt.settings))
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_the_reported_telekom_sk_code_sent_twice_is_resent_by_default_and_says_it_may_arrive_twice(multi_runtime, sandbox):
    """The field report: a send held 12 s (here 1.5 s, past a 0.3 s timeout) for 421900000970."""
    rt = multi_runtime(["telekom-sk"], settings=FAST)
    fault(sandbox, provider="telekom-sk", endpoint="send_message", to="421900000970", **HELD)
    message_id = send_sms("+421900000970", "Your code is 4821", account="telekom-sk", runtime=rt)

    drain(rt)

    assert len(accepted_to(sandbox, "421900000970")) == 2, "Telekom SK cannot be asked: by the default policy (resend) it is sent again"
    row = message_row(rt, message_id)
    assert (row.status, row.attempts, row.possible_duplicate) == (Status.SUBMITTED.value, 2, True)
    history = reasons(rt, message_id)
    assert any("ambiguous attempt (TIMEOUT" in r and "the recipient may get it twice" in r for r in history), history
    assert "POSSIBLE DUPLICATE" in history[-1]
    shown = stats(rt)
    assert (shown["possible_duplicates"], shown["unsure"]) == (1, 0)


def test_a_message_whose_policy_is_give_up_is_sent_at_most_once_and_ends_unknown(multi_runtime, sandbox):
    rt = multi_runtime(["telekom-sk"], settings=FAST)
    fault(sandbox, provider="telekom-sk", endpoint="send_message", to="421900000970", **HELD)
    message_id = send_sms("+421900000970", "Your code is 4821", account="telekom-sk", on_ambiguous="give-up", runtime=rt)

    drain(rt)

    assert len(accepted_to(sandbox, "421900000970")) == 1
    row = message_row(rt, message_id)
    assert (row.status, row.error_code, row.possible_duplicate) == (Status.UNKNOWN.value, "TIMEOUT", False)
    assert "give-up: at most once" in row.error_text and "cannot be asked" in row.error_text


def test_an_accounts_policy_applies_unless_the_message_names_its_own(multi_runtime, sandbox):
    """Sibling: the policy on another adapter (DT A2P), from the providers file, and a message's override."""
    rt = multi_runtime(["dt-a2p"], settings=FAST, extra='on_ambiguous = "give-up"\n')
    fault(sandbox, provider="dt-a2p", endpoint="send", to="4915100000001", **HELD)
    fault(sandbox, provider="dt-a2p", endpoint="send", to="4915100000002", **HELD)
    by_account = send_sms("+4915100000001", "Your code is 1111", runtime=rt)
    overridden = send_sms("+4915100000002", "Your code is 2222", on_ambiguous="resend", runtime=rt)

    drain(rt)

    assert (len(accepted_to(sandbox, "4915100000001")), message_row(rt, by_account).status) == (1, Status.UNKNOWN.value)
    assert (len(accepted_to(sandbox, "4915100000002")), message_row(rt, overridden).possible_duplicate) == (2, True)


def test_telefoon_is_asked_after_a_timeout_and_the_message_it_has_is_adopted_not_sent_again(multi_runtime, sandbox):
    """Sibling: an API that can be asked. Even a message whose policy is give-up is asked about,
    not given up: the provider can tell."""
    rt = multi_runtime(["telefoon"], settings=FAST)
    fault(sandbox, provider="telefoon", endpoint="send", to="31612345678", **HELD)
    message_id = send_sms("+31612345678", "Your code is 4821", on_ambiguous="give-up", runtime=rt)

    drain(rt)

    [sent] = accepted_to(sandbox, "31612345678")
    row = message_row(rt, message_id)
    assert (row.provider_message_id, row.possible_duplicate) == (sent["message_id"], False)
    assert row.status in (Status.SUBMITTED.value, Status.DELIVERED.value), "the status Telefoon lists for it"
    history = reasons(rt, message_id)
    assert any("is asked whether it has the message before any resend" in r for r in history), history
    assert f"had the message from the ambiguous attempt: adopted as {sent['message_id']}, not sent again" in history[-1]


def test_an_adopted_message_is_the_probe_that_closes_its_accounts_breaker(multi_runtime, sandbox):
    """The timeout opened Telefoon's breaker; after the cooldown the unsure message is the probe,
    and the provider's answer that it has the message is a success: the breaker closes."""
    rt = multi_runtime(["telefoon"], settings={**FAST, "breaker_consecutive_failures": 1})
    fault(sandbox, provider="telefoon", endpoint="send", to="31612345677", **HELD)
    message_id = send_sms("+31612345677", "Probe me", runtime=rt)

    drain(rt, timeout=20)

    assert message_row(rt, message_id).status in (Status.SUBMITTED.value, Status.DELIVERED.value)
    assert len(accepted_to(sandbox, "31612345677")) == 1
    assert rt.breaker("telefoon").state().state == "closed"


def test_telefoon_without_the_message_gets_it_again_flagged_a_possible_duplicate(multi_runtime, sandbox):
    """The provider erased what it took (GDPR erasure) before it was asked: it lists nothing, so
    the message is sent again, and the history says it was asked first. It is flagged all the
    same: a listing without the copy cannot prove that the lost request will not reach the
    provider later (the chaos runs saw a sandbox take one 7 s after the client gave up)."""
    rt = multi_runtime(["telefoon"], settings={**FAST, "retry_backoff_seconds": (1.0,)})
    fault(sandbox, provider="telefoon", endpoint="send", to="31612345679", **HELD)
    message_id = send_sms("+31612345679", "Erased before the retry", runtime=rt)

    promote_once(rt)
    dispatch_batch(rt)
    [first] = accepted_to(sandbox, "31612345679")
    httpx.delete(f"{sandbox.url}/telefoon/v1/sms/messages/{first['message_id']}", headers={"X-API-Key": "sandbox-telefoon-key"}).raise_for_status()
    assert unsettled(rt) == 1
    drain(rt)

    assert len(accepted_to(sandbox, "31612345679")) == 2
    row = message_row(rt, message_id)
    assert (row.status, row.possible_duplicate) == (Status.SUBMITTED.value, True)
    assert any("asked first: telefoon had not listed the message" in r for r in reasons(rt, message_id))


def test_a_listed_copy_that_belongs_to_another_message_is_not_adopted(multi_runtime, sandbox):
    """Two messages with the same text to the same number: the second's lookup finds both copies
    and adopts the one no other message holds."""
    rt = multi_runtime(["telefoon"], settings=FAST)
    earlier = send_sms("+31612345670", "Your table is ready", runtime=rt)
    drain(rt)
    fault(sandbox, provider="telefoon", endpoint="send", to="31612345670", **HELD)
    later = send_sms("+31612345670", "Your table is ready", runtime=rt)

    drain(rt)

    copies = [s["message_id"] for s in accepted_to(sandbox, "31612345670")]
    assert len(copies) == 2
    assert [message_row(rt, earlier).provider_message_id, message_row(rt, later).provider_message_id] == copies


def test_an_unsure_message_that_runs_out_of_retries_ends_unknown_not_undeliverable():
    """It may have been delivered: undeliverable or expired would be a lie."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(max_retries=1)
    unsure = Attempt("a", 2, now, now - timedelta(minutes=1), now + timedelta(hours=1), True, unsure_since=now - timedelta(minutes=1))
    sure = Attempt("a", 2, now, now - timedelta(minutes=1), now + timedelta(hours=1), False)
    down = Failure(ErrorKind.TRANSIENT, "HTTP_503", "down")

    assert policy.after_failure(down, unsure, now).status is Status.UNKNOWN
    assert policy.after_failure(down, sure, now).status is Status.UNDELIVERABLE
    short_validity = Attempt("a", 1, now, now, now + timedelta(seconds=10), False)
    assert policy.after_failure(Failure(ErrorKind.AMBIGUOUS, "TIMEOUT", "late"), short_validity, now).status is Status.UNKNOWN


def test_a_policy_that_is_not_one_is_refused_where_it_is_given(runtime, tmp_path):
    with pytest.raises(InvalidField) as refused:
        send_sms("+421900000970", "x", on_ambiguous="maybe", runtime=runtime)
    assert refused.value.field == "on_ambiguous" and "'resend'" in refused.value.reason
    with pytest.raises(ProvidersFileError, match=r"accounts\.a\.on_ambiguous"):
        parse_providers({"accounts": {"a": {"type": "telekom-sk", "base_url": "http://x", "token": "t", "on_ambiguous": "sometimes"}}}, {})


def test_the_old_setting_still_works_and_says_what_replaces_it(monkeypatch):
    monkeypatch.setenv("SMS_WORKER_RETRY_AMBIGUOUS", "never")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Settings().on_ambiguous == "give-up"
    assert any("SMS_WORKER_ON_AMBIGUOUS=give-up" in str(w.message) for w in caught)


def _unsure(rt, message_id, **values: object) -> None:
    """Make the message unsure since an ambiguous attempt on telekom-sk, pinned to it."""
    from sqlalchemy import update

    from sms_worker.lifecycle.tables import MESSAGES

    now = rt.clock.now()
    with rt.engine.begin() as conn:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == message_id)
            .values(status=Status.RETRYING.value, attempts=1, first_attempt_at=now, unsure_since=now, **{"pinned_account": "telekom-sk", **values})
        )


def test_an_unsure_message_past_its_validity_ends_unknown_in_the_dispatcher_and_in_the_sweep(runtime, clock):
    """Held past validity (a paused account, an open breaker), it may still have been delivered:
    not expired ("never sent") but unknown, whichever of the two looks first."""
    from sqlalchemy import update

    from sms_worker.lifecycle.changes import Expired
    from sms_worker.lifecycle.tables import MESSAGES
    from sms_worker.lifecycle.write import expire

    dispatched = send_sms("+421900000971", "Your code is 1", validity=1, runtime=runtime)
    swept = send_sms("+421900000972", "Your code is 2", validity=1, runtime=runtime)
    never_tried = send_sms("+421900000973", "Your code is 3", validity=1, runtime=runtime)
    _unsure(runtime, dispatched)
    _unsure(runtime, swept)
    clock.advance(120)

    promote_once(runtime)
    dispatch_batch(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == never_tried).values(status=Status.QUEUED.value))
        expire(conn, Expired(clock.now(), (swept, never_tried)))

    assert message_row(runtime, dispatched).status == Status.UNKNOWN.value
    assert (message_row(runtime, swept).status, message_row(runtime, never_tried).status) == (Status.UNKNOWN.value, Status.EXPIRED.value)
    assert "may have reached the provider" in reasons(runtime, swept)[-1]


def test_a_permanent_refusal_after_an_ambiguous_attempt_ends_unknown():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    unsure = Attempt("a", 2, now, now, now + timedelta(hours=1), True, unsure_since=now - timedelta(minutes=1))
    refused = Failure(ErrorKind.PERMANENT, "INVALID_NUMBER", "no such number", status=Status.REJECTED)

    assert RetryPolicy().after_failure(refused, unsure, now).status is Status.UNKNOWN, "the first attempt may have been delivered"
    sure = Attempt("a", 1, now, now, now + timedelta(hours=1), False)
    assert RetryPolicy().after_failure(refused, sure, now).status is Status.REJECTED


def test_a_client_retrying_its_request_after_an_ambiguous_attempt_gets_its_id_not_a_conflict(runtime):
    """The ambiguous attempt pinned the message to its account; the client's retry names none.
    A row written before migration 0006 holds that pin in ``requested_account`` too."""
    first = send_sms("+421900000974", "Your code is 4", idempotency_key="order-974", runtime=runtime)
    before_0006 = send_sms("+421900000975", "Your code is 5", idempotency_key="order-975", runtime=runtime)
    _unsure(runtime, first)
    _unsure(runtime, before_0006, requested_account="telekom-sk")

    assert send_sms("+421900000974", "Your code is 4", idempotency_key="order-974", runtime=runtime) == first
    assert send_sms("+421900000975", "Your code is 5", idempotency_key="order-975", runtime=runtime) == before_0006
    with pytest.raises(InvalidField, match="idempotency_key"):
        send_sms("+421900000974", "Your code is 5", idempotency_key="order-974", runtime=runtime)
