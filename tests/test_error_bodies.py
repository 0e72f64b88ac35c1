"""Issue 9, kind 9: an error is an error whatever the HTTP status. A provider's error body is
classified by its code under any status (200 included), on every call of every adapter (send,
status check, balance or login), and an account-wide code pauses the account as under a 4xx."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import httpx
import pytest
from conftest import failed_alone, parse_account, promote_once, sent_alone
from sqlalchemy import select

from sms_worker.dispatch.receipts import poll_statuses
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_many
from sms_worker.providers.base import OutboundMessage
from sms_worker.providers.dexatel import DexatelAdapter
from sms_worker.providers.dt_a2p import DtA2pAdapter
from sms_worker.providers.failures import ErrorKind, ProviderError
from sms_worker.providers.pause import paused_reason
from sms_worker.providers.session_key import SessionKeyAdapter
from sms_worker.providers.telefoon import TelefoonAdapter
from sms_worker.providers.telekom_sk import TelekomSkAdapter
from sms_worker.runtime import NoWaker, build_runtime

MESSAGE = OutboundMessage(uuid.uuid4(), "+421900000102", "Your code is 4821")


@pytest.fixture
def adapters(fake_sandbox, adapter_client):
    url = fake_sandbox.url
    tables = {
        "dexatel": ({"type": "dexatel", "base_url": f"{url}/dexatel", "api_key": "sandbox-dexatel-key", "default_sender": "ACME"}, DexatelAdapter),
        "dt-a2p": ({"type": "dt-a2p", "base_url": f"{url}/dt-a2p", "api_key": "sandbox-dt-key", "default_sender": "+4915112345678"}, DtA2pAdapter),
        "telefoon": (
            {"type": "telefoon", "base_url": f"{url}/telefoon/v1/sms", "api_key": "sandbox-telefoon-key", "default_sender": "ACME"},
            TelefoonAdapter,
        ),
        "session-key": (
            {"type": "session-key", "base_url": f"{url}/session-key", "username": "sandbox-user", "password": "sandbox-pass"},
            SessionKeyAdapter,
        ),
        "telekom-sk": ({"type": "telekom-sk", "base_url": f"{url}/telekom-sk", "token": "sandbox-token"}, TelekomSkAdapter),
    }
    return {name: cls(name, parse_account(table, name), adapter_client()) for name, (table, cls) in tables.items()}


def raised(call) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


def test_the_issue_input_dexatel_funds_error_under_200_is_account_wide_on_every_call(adapters, fake_sandbox):
    dexatel = adapters["dexatel"]
    accepted = sent_alone(dexatel, MESSAGE)
    for endpoint in ("send", "status", "balance"):
        fake_sandbox.add_fault(provider="dexatel", endpoint=endpoint, fault="error_code", code="INSUFFICIENT_FUNDS", http_status=200, times=1)

    sent = failed_alone(dexatel, MESSAGE)
    checked = raised(lambda: dexatel.check(accepted.provider_message_id))
    verified = raised(dexatel.verify)

    for failure in (sent, checked.failure, verified.failure):
        assert (failure.kind, failure.code, failure.account_wide) == (ErrorKind.PERMANENT, "INSUFFICIENT_FUNDS", True)


def send_failure(adapter):
    return failed_alone(adapter, MESSAGE)


def verify_failure(adapter):
    return raised(adapter.verify).failure


@pytest.mark.parametrize(
    ("account", "endpoint", "code", "status", "call"),
    [
        ("dt-a2p", "send", "INSUFFICIENT_BALANCE", 200, send_failure),
        ("dt-a2p", "balance", "INVALID_API_KEY", 200, verify_failure),
        ("telefoon", "send", "30002", 200, send_failure),
        ("telefoon", "list", "20003", 200, verify_failure),
        ("session-key", "sms", "NOT_ENOUGH_CREDITS", 200, send_failure),
        ("session-key", "sms", "NOT_ENOUGH_CREDITS", 503, send_failure),
        ("session-key", "login", "USER_KEY_NOT_FOUND", 200, send_failure),
        ("telekom-sk", "send_message", "IP_NOT_ALLOWED", 403, send_failure),
        ("telekom-sk", "auth", "INVALID_TOKEN", 503, send_failure),
    ],
)
def test_an_account_wide_error_body_is_classified_by_its_code_under_any_status(adapters, fake_sandbox, account, endpoint, code, status, call):
    fake_sandbox.add_fault(provider=account, endpoint=endpoint, fault="error_code", code=code, http_status=status, times=1)

    failure = call(adapters[account])

    assert (failure.kind, failure.code, failure.account_wide) == (ErrorKind.PERMANENT, code, True)


def test_an_unknown_code_under_200_is_permanent_for_the_message_only(adapters, fake_sandbox):
    fake_sandbox.add_fault(provider="dt-a2p", endpoint="send", fault="error_code", code="NEW_CODE", http_status=200, times=1)

    failure = failed_alone(adapters["dt-a2p"], MESSAGE)

    assert (failure.kind, failure.code, failure.account_wide) == (ErrorKind.PERMANENT, "NEW_CODE", False)


def test_a_failed_telefoon_message_with_its_error_code_is_still_a_message(adapters, fake_sandbox, sandbox_clock):
    telefoon = adapters["telefoon"]
    fake_sandbox.add_fault(provider="telefoon", endpoint="send", fault="final_status", status="UNDELIVERABLE", times=1)
    accepted = sent_alone(telefoon, OutboundMessage(uuid.uuid4(), "+31612345678", "hi"))
    sandbox_clock.advance(600)

    record = telefoon.message(accepted.provider_message_id)

    assert (record.status, record.canonical, record.error_code) == ("undelivered", Delivery.UNDELIVERABLE, 30003)


PROVIDERS = """
[accounts.dexatel]
type = "dexatel"
base_url = "{url}/dexatel"
api_key = "sandbox-dexatel-key"
default_sender = "ACME"
rate = 1000
burst = 1000

[accounts.telekom-sk]
type = "telekom-sk"
base_url = "{url}/telekom-sk"
token = "sandbox-token"
rate = 1000
burst = 1000

[routing]
default = {{ dexatel = 1, telekom-sk = 1 }}
"""


def test_the_issue_input_through_the_dispatcher_pauses_dexatel_and_fails_over_without_a_retry(settings_for, redis_client, sandbox, tmp_path):
    path = tmp_path / "providers.toml"
    path.write_text(PROVIDERS.format(url=sandbox.url))
    rt = build_runtime(settings_for(providers_file=path, retry_backoff_seconds=(0.05, 0.1, 0.2, 0.4, 0.8)), waker=NoWaker())
    try:
        sandbox.add_fault(provider="dexatel", endpoint="send", fault="error_code", code="INSUFFICIENT_FUNDS", http_status=200)
        send_many([{"to": f"+42190000{i:04d}", "text": f"funds {i}"} for i in range(20)], runtime=rt)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            promote_once(rt)
            dispatch_batch(rt)
            with rt.engine.connect() as conn:
                statuses = Counter(conn.execute(select(MESSAGES.c.status)).scalars())
            if statuses == {Status.SUBMITTED.value: 20}:
                break
            time.sleep(0.05)

        assert statuses == {Status.SUBMITTED.value: 20}, "none failed, none left retrying"
        assert "INSUFFICIENT_FUNDS" in (paused_reason(rt.redis, "dexatel") or "")
        refused = Counter(s["text"] for s in sandbox.submissions(provider="dexatel"))
        assert refused and set(refused.values()) == {1}, "paused at the first refusal: no message retried on dexatel"
        with rt.engine.connect() as conn:
            assert set(conn.execute(select(MESSAGES.c.attempts)).scalars()) == {1}, "the refused attempts were not counted"
        assert Counter(s["provider"] for s in sandbox.submissions() if s["accepted"]) == {"telekom-sk": 20}
    finally:
        rt.close()


def test_the_sandbox_refuses_an_error_rule_status_that_is_neither_success_nor_error(fake_sandbox):
    answer = httpx.post(f"{fake_sandbox.url}/_sandbox/faults", json={"provider": "dexatel", "fault": "error_code", "code": "X", "http_status": 302})

    assert answer.status_code == 400 and "http_status must be a success (2xx) or error (4xx, 5xx) HTTP status" in answer.text


def test_an_account_wide_error_met_by_a_status_check_pauses_the_account(settings_for, redis_client, sandbox, tmp_path, clock):
    path = tmp_path / "providers.toml"
    path.write_text(PROVIDERS.format(url=sandbox.url))
    rt = build_runtime(settings_for(providers_file=path), waker=NoWaker(), clock=clock)
    try:
        send_many([{"to": "+421900000201", "text": "check me", "account": "dexatel"}], runtime=rt)
        dispatch_batch(rt)
        sandbox.add_fault(provider="dexatel", endpoint="status", fault="error_code", code="UNAUTHORIZED", http_status=200)
        clock.advance(3600)

        report = poll_statuses(rt)

        assert report.errors == 1
        assert "UNAUTHORIZED" in (paused_reason(rt.redis, "dexatel") or "")
        assert paused_reason(rt.redis, "telekom-sk") is None
    finally:
        rt.close()
