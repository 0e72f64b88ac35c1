"""The Dexatel adapter against the sandbox over HTTP (wire format, statuses, error classes),
and the sandbox's own behaviour (auth, balance, faults, recording)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import failed_alone, parse_account, sent_alone

from sms_worker.embedded import free_port
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.accounts import ProvidersFileError
from sms_worker.providers.base import Accepted, OutboundMessage
from sms_worker.providers.dexatel import DexatelAdapter
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError

KEY = "sandbox-dexatel-key"
MESSAGE = OutboundMessage(uuid.uuid4(), "+15551234567", "Your verification code is 482931", sender="YourBrand")


@pytest.fixture
def wire():
    """Every request the adapter makes, as httpx.Request objects (content already read)."""
    return []


@pytest.fixture
def make_provider(fake_sandbox, wire, adapter_client):
    def make(key: str = KEY, timeout: float = 5.0, base_url: str | None = None, default_sender: str = "ACME") -> DexatelAdapter:
        client = adapter_client(on_request=wire.append, timeout=timeout)
        table = {"type": "dexatel", "base_url": base_url or f"{fake_sandbox.url}/dexatel", "api_key": key, "default_sender": default_sender}
        return DexatelAdapter("dexatel", parse_account(table), client)

    return make


@pytest.fixture
def provider(make_provider) -> DexatelAdapter:
    return make_provider()


def fault(sandbox, **rule: object) -> None:
    sandbox.add_fault(provider="dexatel", **rule)


def raised(call) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


# --- sending -------------------------------------------------------------------------------


def test_send_speaks_the_documented_request(provider, wire, fake_sandbox):
    accepted = sent_alone(provider, MESSAGE)

    [request] = wire
    assert (request.method, request.url.path) == ("POST", "/dexatel/v1/sms/send")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"from": "YourBrand", "to": "+15551234567", "text": "Your verification code is 482931"}
    [submission] = fake_sandbox.submissions(provider="dexatel")
    assert accepted.provider_message_id == submission["message_id"]
    assert accepted.provider_message_id.startswith("msg_")
    assert (accepted.provider_status, accepted.delivery) == ("queued", Delivery.QUEUED)
    assert (submission["to"], submission["from"], submission["parts"], submission["code"]) == ("+15551234567", "YourBrand", 1, "OK")
    assert KEY not in json.dumps(submission)


def test_the_default_sender_fills_in_and_a_bare_number_gets_its_plus(provider, wire):
    sent_alone(provider, OutboundMessage(uuid.uuid4(), "15551234567", "Hi"))
    body = json.loads(wire[0].content)
    assert (body["from"], body["to"]) == ("ACME", "+15551234567")


def test_send_makes_one_request_per_message_and_keeps_the_order(provider, wire):
    messages = [MESSAGE, OutboundMessage(uuid.uuid4(), "+1555", "Hi", sender="ACME"), OutboundMessage(uuid.uuid4(), "+447700900123", "Hi")]

    outcomes = provider.send(messages)

    assert len(wire) == 3 and provider.max_recipients == 1
    assert isinstance(outcomes[0], Accepted) and isinstance(outcomes[2], Accepted)
    assert outcomes[0].delivery is Delivery.QUEUED and outcomes[2].delivery is Delivery.QUEUED
    assert isinstance(outcomes[1], Failure) and outcomes[1].code == "INVALID_NUMBER"
    assert provider.group_key(messages[0]) != provider.group_key(messages[2])


def test_a_long_unicode_text_is_billed_in_parts(provider, fake_sandbox):
    before = float(provider.verify().split()[1])
    sent_alone(provider, OutboundMessage(uuid.uuid4(), "+15551234567", "Ďakujeme " * 10))  # 90 UCS-2 units: 2 parts

    assert fake_sandbox.submissions(provider="dexatel")[0]["parts"] == 2
    assert float(provider.verify().split()[1]) == pytest.approx(before - 0.10)


# --- statuses ------------------------------------------------------------------------------


def test_check_follows_the_message_to_delivered(provider, wire, sandbox_clock):
    accepted = sent_alone(provider, MESSAGE)
    accepted_at = sandbox_clock.now()

    first = provider.check(accepted.provider_message_id)
    assert (wire[-1].method, wire[-1].url.path) == ("GET", f"/dexatel/v1/sms/{accepted.provider_message_id}")
    assert wire[-1].headers["authorization"] == f"Bearer {KEY}"
    assert (first.provider_status, first.delivery, first.delivered_at) == ("queued", Delivery.QUEUED, None)

    sandbox_clock.advance(0.4)
    assert provider.check(accepted.provider_message_id).delivery is Delivery.SENT

    sandbox_clock.advance(5)
    report = provider.check(accepted.provider_message_id)
    assert (report.provider_status, report.delivery) == ("delivered", Delivery.DELIVERED)
    assert abs(report.delivered_at - (accepted_at + timedelta(seconds=0.6))) < timedelta(milliseconds=2)


@pytest.mark.parametrize(
    ("final", "word", "delivery"),
    # "unknown" is not a documented Dexatel word: it is recorded and maps to no delivery.
    [("DENIED", "failed", Delivery.REJECTED), ("UNDELIVERABLE", "undelivered", Delivery.UNDELIVERABLE), ("UNKNOWN", "unknown", None)],
)
def test_a_final_status_fault_ends_the_message_there(provider, fake_sandbox, sandbox_clock, final, word, delivery):
    fault(fake_sandbox, endpoint="send", fault="final_status", status=final)
    accepted = sent_alone(provider, MESSAGE)
    sandbox_clock.advance(5)

    report = provider.check(accepted.provider_message_id)

    assert (report.provider_status, report.delivery, report.delivered_at) == (word, delivery, None)


def test_checking_an_unknown_message_fails_that_message_only(provider):
    error = raised(lambda: provider.check("msg_999999999"))
    assert (error.kind, error.code, error.account_wide) == (ErrorKind.PERMANENT, "MESSAGE_NOT_FOUND", False)


def test_the_status_table_knows_the_documented_words():
    words = {
        "queued": Delivery.QUEUED,
        "sent": Delivery.SENT,
        "delivered": Delivery.DELIVERED,
        "failed": Delivery.REJECTED,
        "undelivered": Delivery.UNDELIVERABLE,
    }
    assert {word: DexatelAdapter.delivery(word) for word in words} == words
    assert DexatelAdapter.delivery("rejected-by-gremlins") is None
    assert DexatelAdapter.delivery(" Queued ") is Delivery.QUEUED, "a word in another case is still the word (issue 15, kind 6a)"


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "status"),
    [
        (OutboundMessage(uuid.uuid4(), "12345", "Hi"), "INVALID_NUMBER", Status.UNDELIVERABLE),
        (OutboundMessage(uuid.uuid4(), "+15551234567", ""), "INVALID_TEXT", Status.REJECTED),
        (OutboundMessage(uuid.uuid4(), "+15551234567", "x" * 1531), "INVALID_TEXT", Status.REJECTED),  # 11 parts
        (OutboundMessage(uuid.uuid4(), "+15551234567", "Hi", sender="Far too long a sender"), "INVALID_SENDER", Status.REJECTED),
    ],
)
def test_a_message_the_sandbox_refuses_fails_alone_and_for_good(provider, fake_sandbox, message, code, status):
    error = failed_alone(provider, message)

    assert (error.kind, error.code, error.account_wide, error.status) == (ErrorKind.PERMANENT, code, False, status)
    [submission] = fake_sandbox.submissions(provider="dexatel")
    assert (submission["accepted"], submission["code"], submission["message_id"]) == (False, code, None)


@pytest.mark.parametrize(
    ("rule", "kind", "code", "account_wide"),
    [
        ({"fault": "error_code", "code": "INSUFFICIENT_FUNDS"}, ErrorKind.PERMANENT, "INSUFFICIENT_FUNDS", True),
        ({"fault": "error_code", "code": "UNAUTHORIZED"}, ErrorKind.PERMANENT, "UNAUTHORIZED", True),
        ({"fault": "error_code", "code": "INVALID_NUMBER"}, ErrorKind.PERMANENT, "INVALID_NUMBER", False),
        ({"fault": "error_code", "code": "RATE_LIMITED"}, ErrorKind.TRANSIENT, "RATE_LIMITED", False),
        ({"fault": "error_code", "code": "INTERNAL_ERROR"}, ErrorKind.TRANSIENT, "INTERNAL_ERROR", False),
        ({"fault": "error_code", "code": "SERVICE_UNAVAILABLE"}, ErrorKind.TRANSIENT, "SERVICE_UNAVAILABLE", False),
        ({"fault": "error_code", "code": "SOMETHING_NEW"}, ErrorKind.PERMANENT, "HTTP_400", False),
        ({"fault": "http_status", "status": 503}, ErrorKind.TRANSIENT, "HTTP_503", False),
        ({"fault": "http_status", "status": 429}, ErrorKind.TRANSIENT, "HTTP_429", False),
        ({"fault": "http_status", "status": 401}, ErrorKind.PERMANENT, "HTTP_401", True),
        ({"fault": "timeout", "seconds": 1.0}, ErrorKind.AMBIGUOUS, "TIMEOUT", False),
    ],
)
def test_errors_are_classified(make_provider, fake_sandbox, rule, kind, code, account_wide):
    provider = make_provider(timeout=0.3)
    fault(fake_sandbox, endpoint="send", **rule)

    error = failed_alone(provider, MESSAGE)

    assert (error.kind, error.code, error.account_wide) == (kind, code, account_wide)


def test_the_error_envelope_reaches_the_caller(provider, fake_sandbox, wire):
    fault(fake_sandbox, endpoint="send", fault="error_code", code="INSUFFICIENT_FUNDS", description="Top up, please")
    error = failed_alone(provider, MESSAGE)
    assert error.text == "Top up, please"


def test_a_bad_key_is_an_account_wide_permanent_fault(make_provider, fake_sandbox):
    provider = make_provider(key="wrong")
    failures = [failed_alone(provider, MESSAGE), raised(provider.verify), raised(lambda: provider.check("msg_100000"))]
    for error in failures:
        assert (error.kind, error.code, error.account_wide) == (ErrorKind.PERMANENT, "UNAUTHORIZED", True)
    assert fake_sandbox.submissions(provider="dexatel")[0]["code"] == "UNAUTHORIZED"


def test_a_wrong_base_url_pauses_the_account(make_provider, fake_sandbox):
    error = failed_alone(make_provider(base_url=f"{fake_sandbox.url}/not-dexatel"), MESSAGE)
    assert (error.kind, error.code, error.account_wide) == (ErrorKind.PERMANENT, "HTTP_404", True)


def test_no_server_is_transient(make_provider):
    error = failed_alone(make_provider(base_url=f"http://127.0.0.1:{free_port()}"), MESSAGE)
    assert (error.kind, error.code) == (ErrorKind.TRANSIENT, "CONNECTION")


def test_a_status_fault_hits_the_status_endpoint_only(provider, fake_sandbox):
    accepted = sent_alone(provider, MESSAGE)
    fault(fake_sandbox, endpoint="status", fault="http_status", status=502, times=1)

    assert raised(lambda: provider.check(accepted.provider_message_id)).kind is ErrorKind.TRANSIENT
    assert provider.check(accepted.provider_message_id).delivery is Delivery.QUEUED


# --- verify, callbacks, configuration ------------------------------------------------------


def test_verify_reads_the_balance(provider, wire):
    assert provider.verify() == "balance 1000000.00 EUR"
    assert (wire[0].method, wire[0].url.path, wire[0].headers["authorization"]) == ("GET", "/dexatel/v1/account/balance", f"Bearer {KEY}")
    sent_alone(provider, MESSAGE)
    assert provider.verify() == "balance 999999.95 EUR"


def test_open_proves_the_key_before_the_first_message(make_provider, wire):
    make_provider().open()
    assert [(r.method, r.url.path) for r in wire] == [("GET", "/dexatel/v1/account/balance")]
    error = raised(make_provider(key="wrong").open)
    assert (error.code, error.account_wide) == ("UNAUTHORIZED", True)


def test_a_delivered_webhook_becomes_a_report(provider):
    body = {"message_id": "msg_123456789", "status": "delivered", "recipient": "+15551234567", "timestamp": "2030-01-01T12:00:05Z"}

    [report] = provider.parse_callback(json.dumps(body).encode(), "application/json")

    assert (report.provider_message_id, report.provider_status, report.delivery) == ("msg_123456789", "delivered", Delivery.DELIVERED)
    assert report.delivered_at == datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)


def test_a_failed_webhook_has_no_delivery_time(provider):
    body = {"message_id": "msg_1", "status": "failed", "recipient": "+15551234567", "timestamp": "2030-01-01T13:00:05+01:00"}
    [report] = provider.parse_callback(json.dumps(body).encode(), "application/json")
    assert (report.delivery, report.delivered_at) == (Delivery.REJECTED, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"message_id=msg_1&status=delivered",
        b"[]",
        b'{"status": "delivered"}',
        b'{"message_id": "msg_1"}',
        b'{"message_id": "msg_1", "status": "delivered", "timestamp": "yesterday"}',
        b'{"message_id": "msg_1", "status": "delivered", "timestamp": "2030-01-01T12:00:05"}',
    ],
)
def test_a_webhook_that_is_not_one_is_refused(provider, body):
    with pytest.raises(ValueError):
        provider.parse_callback(body, "application/json")


@pytest.mark.parametrize(
    ("credentials", "options", "field"),
    [
        ({}, {"default_sender": "ACME"}, "api_key"),
        ({"api_key": "k"}, {}, "default_sender"),
        ({"api_key": "k"}, {"default_sender": "Far too long a sender"}, "default_sender"),
        ({"api_key": "k"}, {"default_sender": 42}, "default_sender"),
    ],
)
def test_the_account_table_names_what_is_wrong(credentials, options, field):
    table = {"type": "dexatel", "base_url": "http://127.0.0.1:1/dexatel", **credentials, **options}
    with pytest.raises(ProvidersFileError, match=f"accounts.dx.{field}: "):
        parse_account(table, "dx")


# --- the sandbox itself --------------------------------------------------------------------


def test_the_sandbox_answers_errors_in_its_envelope(fake_sandbox):
    url = f"{fake_sandbox.url}/dexatel/v1/sms/send"
    body = {"from": "ACME", "to": "+15551234567", "text": "Hi"}

    no_key = httpx.post(url, json=body)
    assert (no_key.status_code, no_key.json()["error"]["code"]) == (401, "UNAUTHORIZED")
    form = httpx.post(url, data=body, headers={"Authorization": f"Bearer {KEY}"})
    assert (form.status_code, form.json()["error"]["code"]) == (400, "INVALID_REQUEST")
    ok = httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert ok.json() == {"message_id": ok.json()["message_id"], "status": "queued", "recipient": "+15551234567"}


def test_the_status_answer_says_when_the_status_last_changed(provider, fake_sandbox, sandbox_clock):
    accepted = sent_alone(provider, MESSAGE)
    accepted_at = sandbox_clock.now()
    sandbox_clock.advance(0.4)

    answer = httpx.get(f"{fake_sandbox.url}/dexatel/v1/sms/{accepted.provider_message_id}", headers={"Authorization": f"Bearer {KEY}"})

    sent_at = (accepted_at + timedelta(seconds=0.3)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert answer.json() == {"message_id": accepted.provider_message_id, "status": "sent", "recipient": "+15551234567", "updated_at": sent_at}


def test_a_slow_answer_still_delivers_the_message(make_provider, fake_sandbox, sandbox_clock):
    fault(fake_sandbox, endpoint="send", fault="latency", ms=500, times=1)
    assert failed_alone(make_provider(timeout=0.2), MESSAGE).code == "TIMEOUT"

    [submission] = fake_sandbox.submissions(provider="dexatel")
    assert submission["accepted"] is True
    sandbox_clock.advance(5)
    assert make_provider().check(submission["message_id"]).delivery is Delivery.DELIVERED


def test_a_fault_for_one_number_spares_the_others(provider, fake_sandbox):
    fault(fake_sandbox, to="+447700900123", fault="error_code", code="INVALID_NUMBER")
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED
    assert failed_alone(provider, OutboundMessage(uuid.uuid4(), "+447700900123", "Hi")).code == "INVALID_NUMBER"


def test_session_loss_means_nothing_here(provider, fake_sandbox):
    fault(fake_sandbox, fault="session_loss", times=1)
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED
    assert len(httpx.get(f"{fake_sandbox.url}/_sandbox/faults").json()["faults"]) == 1


def test_reset_forgets_messages_and_refills_the_balance(provider, fake_sandbox):
    accepted = sent_alone(provider, MESSAGE)
    httpx.post(f"{fake_sandbox.url}/_sandbox/reset").raise_for_status()

    assert raised(lambda: provider.check(accepted.provider_message_id)).code == "MESSAGE_NOT_FOUND"
    assert provider.verify() == "balance 1000000.00 EUR"
    assert sent_alone(provider, MESSAGE).provider_message_id != accepted.provider_message_id
