"""Deutsche Telekom A2P: the adapter against the sandbox over HTTP (wire format, prepaid balance,
sender rules, every error class), and the sandbox's own behaviour."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest
from conftest import failed_alone, parse_account, sent_alone
from starlette.testclient import TestClient

from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.accounts import ProvidersFileError
from sms_worker.providers.base import OutboundMessage
from sms_worker.providers.dt_a2p import DtA2pAdapter
from sms_worker.providers.failures import ErrorKind, ProviderError
from sms_worker.sandbox.app import create_app
from sms_worker.sandbox.settings import SandboxSettings

API_KEY = "sandbox-dt-key"
DE = "+4915112345000"
US = "+12025550123"
PRICE = SandboxSettings().dt_a2p_price_per_part
MESSAGE = OutboundMessage(uuid.uuid4(), DE, "Hallo", sender="ACME")
LONG_TEXT = "x" * 161  # two GSM-7 parts


def account(base_url: str, api_key: str = API_KEY, **options: object) -> dict:
    """A ``dt-a2p`` account table of the providers file."""
    return {"type": "dt-a2p", "base_url": base_url, "api_key": api_key, "default_sender": "ACME", **options}


def adapter(table: dict, client: httpx.Client) -> DtA2pAdapter:
    return DtA2pAdapter("dt", parse_account(table, "dt"), client)


@pytest.fixture
def wire() -> list[httpx.Request]:
    """Every request the adapter made, in order."""
    return []


@pytest.fixture
def make_provider(fake_sandbox, wire, adapter_client) -> Callable[..., DtA2pAdapter]:
    def make(api_key: str = API_KEY, timeout: float = 5.0, **options: object) -> DtA2pAdapter:
        client = adapter_client(on_request=wire.append, timeout=timeout)
        return adapter(account(f"{fake_sandbox.url}/dt-a2p", api_key, **options), client)

    return make


@pytest.fixture
def add_fault(fake_sandbox) -> Callable[..., dict]:
    return lambda **rule: fake_sandbox.add_fault(provider="dt-a2p", **rule)


class Offline:
    """The sandbox app built with its own settings, served through starlette's TestClient (the
    threaded sandbox takes no settings); the adapter uses the TestClient as its httpx client."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.client = TestClient(create_app(settings=settings))

    def provider(self, **options: object) -> DtA2pAdapter:
        return adapter(account("http://testserver/dt-a2p", **options), self.client)

    def submissions(self) -> list[dict]:
        return self.client.get("/_sandbox/submissions").json()["submissions"]


def charged(provider: DtA2pAdapter, start: float) -> float:
    """How much the balance went down since ``start``, read the way a user would: verify()."""
    return round(start - provider.balance()[0], 6)


# --- the adapter: wire format ----------------------------------------------------------------


def test_send_posts_one_json_message_with_the_api_key_header(make_provider, wire, fake_sandbox):
    accepted = sent_alone(make_provider(), MESSAGE)

    [request] = wire
    assert (request.method, request.url.path) == ("POST", "/dt-a2p/v1/sms")
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"from": "ACME", "to": DE, "text": "Hallo"}
    [submission] = fake_sandbox.submissions()
    assert accepted.provider_message_id == str(submission["message_id"])
    assert (accepted.provider_status, accepted.delivery, accepted.segments) == ("queued", Delivery.QUEUED, 1)


def test_a_message_without_sender_goes_from_the_default_sender(make_provider, wire):
    sent_alone(make_provider(default_sender="+4915112345678"), OutboundMessage(uuid.uuid4(), DE, "Hallo"))
    assert json.loads(wire[0].content)["from"] == "+4915112345678"


def test_a_long_text_is_accepted_and_billed_as_several_parts(make_provider):
    provider = make_provider()
    start = provider.balance()[0]
    accepted = sent_alone(provider, OutboundMessage(uuid.uuid4(), DE, LONG_TEXT))
    assert accepted.segments == 2
    assert charged(provider, start) == pytest.approx(2 * PRICE)


def test_send_makes_one_request_per_recipient(make_provider, wire):
    provider = make_provider(senders=["ACME"])
    outcomes = provider.send(
        [MESSAGE, OutboundMessage(uuid.uuid4(), DE, "Hallo", sender="Unverified"), OutboundMessage(uuid.uuid4(), "+4915112345001", "Hi")]
    )
    assert [type(o).__name__ for o in outcomes] == ["Accepted", "Failure", "Accepted"]
    assert [json.loads(r.content)["to"] for r in wire] == [DE, "+4915112345001"]
    assert provider.max_recipients == 1
    assert provider.group_key(MESSAGE) != provider.group_key(OutboundMessage(uuid.uuid4(), DE, "Hallo", sender="ACME"))


def test_delivery_report_follows_the_clock(make_provider, wire, sandbox_clock):
    provider = make_provider()
    message_id = sent_alone(provider, MESSAGE).provider_message_id
    assert provider.check(message_id).delivery is Delivery.QUEUED
    sandbox_clock.advance(0.4)
    assert provider.check(message_id).delivery is Delivery.SENT
    sandbox_clock.advance(1)

    report = provider.check(message_id)

    assert (report.provider_message_id, report.provider_status, report.delivery) == (message_id, "delivered", Delivery.DELIVERED)
    assert abs((report.delivered_at - sandbox_clock.now()).total_seconds()) < 2
    request = wire[-1]
    assert (request.method, request.url.path, request.headers["x-api-key"]) == ("GET", f"/dt-a2p/v1/sms/{message_id}", API_KEY)


@pytest.mark.parametrize(
    ("final", "word", "delivery"),
    [("UNDELIVERABLE", "undelivered", Delivery.UNDELIVERABLE), ("DENIED", "rejected", Delivery.REJECTED), ("EXPIRED", "expired", Delivery.EXPIRED)],
)
def test_a_final_status_fault_is_reported_in_the_platforms_words(make_provider, add_fault, sandbox_clock, final, word, delivery):
    provider = make_provider()
    add_fault(endpoint="send", fault="final_status", status=final, times=1)
    message_id = sent_alone(provider, MESSAGE).provider_message_id
    sandbox_clock.advance(5)
    report = provider.check(message_id)
    assert (report.provider_status, report.delivery, report.delivered_at) == (word, delivery, None)


def test_verify_reports_the_balance_with_a_free_get(make_provider, wire):
    provider = make_provider()
    assert provider.verify() == "balance 1000000.00 EUR"
    assert provider.verify() == "balance 1000000.00 EUR"  # asking costs nothing
    assert [(r.method, r.url.path, r.headers["x-api-key"]) for r in wire] == [("GET", "/dt-a2p/v1/balance", API_KEY)] * 2


def test_open_checks_the_key_before_the_first_message(make_provider, wire):
    make_provider().open()
    assert [r.url.path for r in wire] == ["/dt-a2p/v1/balance"]
    with pytest.raises(ProviderError) as caught:
        make_provider(api_key="wrong").open()
    assert (caught.value.code, caught.value.account_wide) == ("INVALID_API_KEY", True)


# --- the adapter: errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "code", "account_wide", "status"),
    [
        ({"fault": "error_code", "code": "INSUFFICIENT_BALANCE"}, ErrorKind.PERMANENT, "INSUFFICIENT_BALANCE", True, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "INVALID_API_KEY"}, ErrorKind.PERMANENT, "INVALID_API_KEY", True, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "SENDER_NOT_VERIFIED"}, ErrorKind.PERMANENT, "SENDER_NOT_VERIFIED", False, Status.REJECTED),
        (
            {"fault": "error_code", "code": "ALPHANUMERIC_SENDER_NOT_ALLOWED"},
            ErrorKind.PERMANENT,
            "ALPHANUMERIC_SENDER_NOT_ALLOWED",
            False,
            Status.REJECTED,
        ),
        ({"fault": "error_code", "code": "INVALID_RECIPIENT"}, ErrorKind.PERMANENT, "INVALID_RECIPIENT", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "INVALID_PARAMETER"}, ErrorKind.PERMANENT, "INVALID_PARAMETER", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "MISSING_PARAMETER"}, ErrorKind.PERMANENT, "MISSING_PARAMETER", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "INVALID_REQUEST"}, ErrorKind.PERMANENT, "INVALID_REQUEST", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "RATE_LIMITED"}, ErrorKind.TRANSIENT, "RATE_LIMITED", False, None),
        ({"fault": "error_code", "code": "INTERNAL_ERROR"}, ErrorKind.TRANSIENT, "INTERNAL_ERROR", False, None),
        ({"fault": "error_code", "code": "SERVICE_UNAVAILABLE"}, ErrorKind.TRANSIENT, "SERVICE_UNAVAILABLE", False, None),
        ({"fault": "error_code", "code": "SOMETHING_NEW"}, ErrorKind.PERMANENT, "HTTP_400", False, Status.UNDELIVERABLE),
        ({"fault": "http_status", "status": 503}, ErrorKind.TRANSIENT, "HTTP_503", False, None),
        ({"fault": "http_status", "status": 429}, ErrorKind.TRANSIENT, "HTTP_429", False, None),
        ({"fault": "http_status", "status": 401}, ErrorKind.PERMANENT, "HTTP_401", True, Status.UNDELIVERABLE),
        ({"fault": "http_status", "status": 402}, ErrorKind.PERMANENT, "HTTP_402", False, Status.UNDELIVERABLE),
        ({"fault": "timeout", "seconds": 1.0}, ErrorKind.AMBIGUOUS, "TIMEOUT", False, None),
    ],
)
def test_errors_are_classified(make_provider, add_fault, fault, kind, code, account_wide, status):
    provider = make_provider(timeout=0.3)
    add_fault(endpoint="send", times=1, **fault)

    caught = failed_alone(provider, MESSAGE)

    assert (caught.kind, caught.code, caught.account_wide) == (kind, code, account_wide)
    if status is not None:
        assert caught.status is status
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED  # the fault was one request's only


def test_a_provider_error_message_reaches_the_error_text(make_provider, add_fault):
    add_fault(endpoint="send", fault="error_code", code="INTERNAL_ERROR", description="SMSC link down")
    caught = failed_alone(make_provider(), MESSAGE)
    assert caught.text == "SMSC link down"


def test_a_wrong_api_key_is_account_wide(make_provider):
    provider = make_provider(api_key="wrong")
    failures = [failed_alone(provider, MESSAGE)]
    for call in (provider.verify, lambda: provider.check("100000")):
        with pytest.raises(ProviderError) as caught:
            call()
        failures.append(caught.value.failure)
    for failure in failures:
        assert (failure.kind, failure.code, failure.account_wide) == (ErrorKind.PERMANENT, "INVALID_API_KEY", True)


def test_latency_under_the_timeout_only_slows_the_answer(make_provider, add_fault):
    add_fault(endpoint="send", fault="latency", ms=100, times=1)
    assert sent_alone(make_provider(timeout=2), MESSAGE).delivery is Delivery.QUEUED


def test_an_unknown_message_id_fails_that_message_only(make_provider):
    with pytest.raises(ProviderError) as caught:
        make_provider().check("999999999")
    assert (caught.value.kind, caught.value.code, caught.value.account_wide) == (ErrorKind.PERMANENT, "MESSAGE_NOT_FOUND", False)


def test_faults_on_report_and_balance(make_provider, add_fault):
    provider = make_provider()
    message_id = sent_alone(provider, MESSAGE).provider_message_id
    add_fault(endpoint="report", fault="http_status", status=502, times=1)
    add_fault(endpoint="balance", fault="error_code", code="SERVICE_UNAVAILABLE", times=1)
    with pytest.raises(ProviderError) as report:
        provider.check(message_id)
    with pytest.raises(ProviderError) as balance:
        provider.verify()
    assert (report.value.kind, report.value.code) == (ErrorKind.TRANSIENT, "HTTP_502")
    assert (balance.value.kind, balance.value.code) == (ErrorKind.TRANSIENT, "SERVICE_UNAVAILABLE")
    assert provider.check(message_id).delivery is Delivery.QUEUED


# --- the adapter: senders, recipients and money ----------------------------------------------


def test_the_api_refuses_and_charges_an_unverified_sender(make_provider, fake_sandbox):
    provider = make_provider()  # no "senders" option: the adapter cannot tell
    start = provider.balance()[0]
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), DE, "Hallo", sender="NotMine"))
    error = caught
    assert (error.kind, error.code, error.account_wide, error.status) == (ErrorKind.PERMANENT, "SENDER_NOT_VERIFIED", False, Status.REJECTED)
    assert charged(provider, start) == pytest.approx(PRICE)
    [submission] = fake_sandbox.submissions()
    assert (submission["accepted"], submission["code"], submission["from"]) == (False, "SENDER_NOT_VERIFIED", "NotMine")
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED  # other senders still work


def test_the_adapter_refuses_an_unverified_sender_without_a_charged_request(make_provider, wire, fake_sandbox):
    provider = make_provider(senders=["ACME", "+4915112345678"])
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), DE, "Hallo", sender="NotMine"))
    error = caught
    assert (error.kind, error.code, error.account_wide, error.status) == (ErrorKind.PERMANENT, "SENDER_NOT_VERIFIED", False, Status.REJECTED)
    assert "NotMine" in error.text
    assert (wire, fake_sandbox.submissions()) == ([], [])


def test_the_api_refuses_and_charges_an_alphanumeric_sender_to_a_country_without_them(make_provider):
    provider = make_provider()
    start = provider.balance()[0]
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), US, "Hello", sender="ACME"))
    assert (caught.code, caught.account_wide, caught.status) == ("ALPHANUMERIC_SENDER_NOT_ALLOWED", False, Status.REJECTED)
    assert charged(provider, start) == pytest.approx(PRICE)
    assert sent_alone(provider, OutboundMessage(uuid.uuid4(), US, "Hello", sender="+4915112345678")).delivery is Delivery.QUEUED


def test_the_adapter_refuses_an_alphanumeric_sender_to_a_country_not_listed(make_provider, wire):
    provider = make_provider(alphanumeric_countries=["de", "AT"])
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), US, "Hello", sender="ACME"))
    error = caught
    assert (error.kind, error.code, error.account_wide, error.status) == (
        ErrorKind.PERMANENT,
        "ALPHANUMERIC_SENDER_NOT_ALLOWED",
        False,
        Status.REJECTED,
    )
    assert "US" in error.text and wire == []
    sent_alone(provider, MESSAGE)  # DE is listed
    sent_alone(provider, OutboundMessage(uuid.uuid4(), US, "Hello", sender="+4915112345678"))  # a number may go anywhere
    assert len(wire) == 2


def test_a_wrong_number_is_refused_and_charged(make_provider):
    provider = make_provider()
    start = provider.balance()[0]
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), "+4912", "Hallo"))
    assert (caught.kind, caught.code, caught.account_wide) == (ErrorKind.PERMANENT, "INVALID_RECIPIENT", False)
    assert caught.status is Status.UNDELIVERABLE
    assert charged(provider, start) == pytest.approx(PRICE)


def test_a_balance_that_runs_out_pauses_the_account():
    sandbox = Offline(SandboxSettings(dt_a2p_balance=0.2))
    provider = sandbox.provider()
    sent_alone(provider, MESSAGE)
    sent_alone(provider, MESSAGE)  # 0.15 spent, 0.05 left: not enough for a part

    caught = failed_alone(provider, MESSAGE)

    error = caught
    assert (error.kind, error.code, error.account_wide) == (ErrorKind.PERMANENT, "INSUFFICIENT_BALANCE", True)
    assert provider.verify() == "balance 0.05 EUR"
    assert [s["code"] for s in sandbox.submissions()] == ["OK", "OK", "INSUFFICIENT_BALANCE"]


def test_a_two_part_text_needs_the_price_of_two_parts():
    provider = Offline(SandboxSettings(dt_a2p_balance=0.1)).provider()
    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), DE, LONG_TEXT))
    assert caught.code == "INSUFFICIENT_BALANCE"
    assert sent_alone(provider, MESSAGE).segments == 1
    assert provider.verify() == "balance 0.03 EUR"


def test_open_refuses_an_empty_prepaid_account():
    provider = Offline(SandboxSettings(dt_a2p_balance=0)).provider()
    with pytest.raises(ProviderError) as caught:
        provider.open()
    assert (caught.value.kind, caught.value.code, caught.value.account_wide) == (ErrorKind.PERMANENT, "INSUFFICIENT_BALANCE", True)


# --- the adapter: callbacks, vocabulary, configuration ---------------------------------------


def offline_provider() -> DtA2pAdapter:
    """For what needs no HTTP at all: callbacks, vocabulary."""
    return adapter(account("http://unused.invalid"), httpx.Client())


def test_parse_callback_reads_delivery_reports():
    provider = offline_provider()
    one = b'{"id": "100007", "status": "delivered", "delivered_at": "2030-01-01T12:00:01.500Z"}'
    [report] = provider.parse_callback(one, "application/json; charset=utf-8")
    assert (report.provider_message_id, report.delivery) == ("100007", Delivery.DELIVERED)
    assert report.delivered_at == datetime.fromisoformat("2030-01-01T12:00:01.500+00:00")
    many = b'[{"id": "1", "status": "rejected"}, {"id": 2, "status": "Undelivered"}]'
    assert [(r.provider_message_id, r.delivery) for r in provider.parse_callback(many, "application/json")] == [
        ("1", Delivery.REJECTED),
        ("2", Delivery.UNDELIVERABLE),
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"not json", "application/json"), (b'{"status": "delivered"}', "application/json"), (b"[1]", "application/json"), (b"{}", "text/plain")],
)
def test_parse_callback_rejects_garbage(body, content_type):
    with pytest.raises(ValueError):
        offline_provider().parse_callback(body, content_type)


def test_unknown_status_words_and_codes():
    provider = offline_provider()
    assert provider.delivery("teleported") is None
    assert provider.delivery("unknown") is Delivery.UNDETERMINED  # the platform's own word, unlike one it never says
    assert provider.delivery(" SENT ") is Delivery.SENT
    error = provider.error("NEVER_HEARD_OF", "")
    assert (error.kind, error.account_wide) == (ErrorKind.PERMANENT, False)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"senders": [f"+49151000000{i:02}" for i in range(51)]}, "senders"),
        ({"senders": "ACME"}, "senders"),
        ({"senders": ["ACME", ""]}, "senders"),
        ({"default_sender": None}, "default_sender"),
        ({"senders": ["Other"]}, "default_sender"),
        ({"alphanumeric_countries": ["DEU"]}, "alphanumeric_countries"),
        ({"alphanumeric_countries": "DE"}, "alphanumeric_countries"),
    ],
)
def test_the_account_table_refuses_bad_options(options, field):
    with pytest.raises(ProvidersFileError, match=field):
        parse_account(account("http://x", **options), "dt")


def test_the_account_table_needs_the_api_key_and_takes_fifty_senders():
    table = account("http://x")
    del table["api_key"]
    with pytest.raises(ProvidersFileError, match="accounts.dt.api_key: is required"):
        parse_account(table, "dt")
    senders = ["ACME", *(f"+49151000000{i:02}" for i in range(49))]
    assert adapter(account("http://x", senders=senders), httpx.Client()).name == "dt"


# --- the sandbox itself ----------------------------------------------------------------------


@pytest.fixture
def raw() -> Iterator[TestClient]:
    with TestClient(create_app(settings=SandboxSettings(dt_a2p_balance=1.0))) as client:
        yield client


def post(client: TestClient, body: object, key: str | None = API_KEY) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    return client.post("/dt-a2p/v1/sms", content=json.dumps(body), headers=headers)


def balance(client: TestClient) -> float:
    return client.get("/dt-a2p/v1/balance", headers={"X-API-Key": API_KEY}).json()["balance"]


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        (None, {"from": "ACME", "to": DE, "text": "x"}, 401, "INVALID_API_KEY"),
        ("wrong", {"from": "ACME", "to": DE, "text": "x"}, 401, "INVALID_API_KEY"),
        (API_KEY, ["not", "an", "object"], 400, "INVALID_REQUEST"),
        (API_KEY, {"from": "ACME", "to": DE}, 400, "MISSING_PARAMETER"),
        (API_KEY, {"from": "ACME", "to": DE, "text": 5}, 400, "INVALID_PARAMETER"),
    ],
)
def test_sandbox_refuses_unauthenticated_or_malformed_requests_without_charging(raw, key, body, status, code):
    response = post(raw, body, key)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert balance(raw) == 1.0
    [submission] = raw.get("/_sandbox/submissions").json()["submissions"]
    assert (submission["accepted"], submission["code"], submission["parts"]) == (False, code, None)


def test_sandbox_answers_created_with_cost_and_balance_and_records_extra_fields(raw):
    response = post(raw, {"from": "+491701234567", "to": DE, "text": "Grüße", "flash": True})
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("status", "to", "from", "parts", "cost", "currency", "balance", "delivered_at")} == {
        "status": "queued",
        "to": DE,
        "from": "+491701234567",
        "parts": 1,
        "cost": PRICE,
        "currency": "EUR",
        "balance": 1.0 - PRICE,
        "delivered_at": None,
    }
    assert body["id"].isdigit() and body["created_at"].endswith("Z")
    [submission] = raw.get("/_sandbox/submissions").json()["submissions"]
    assert (submission["params"], submission["text"], submission["parts"]) == ({"flash": True}, "Grüße", 1)


def test_sandbox_counts_ucs2_parts(raw):
    assert post(raw, {"from": "ACME", "to": DE, "text": "Привет" * 12}).json()["parts"] == 2  # 72 UCS-2 units


def test_sandbox_reset_restores_the_balance(raw):
    post(raw, {"from": "ACME", "to": DE, "text": "x"})
    assert balance(raw) == pytest.approx(1.0 - PRICE)
    raw.post("/_sandbox/reset")
    assert balance(raw) == 1.0
    assert raw.get("/dt-a2p/v1/sms/100000", headers={"X-API-Key": API_KEY}).status_code == 404


def test_sandbox_faults_are_not_charged_but_a_timed_out_send_is(raw):
    raw.post("/_sandbox/faults", json={"provider": "dt-a2p", "fault": "error_code", "code": "INSUFFICIENT_BALANCE", "times": 1})
    refused = post(raw, {"from": "ACME", "to": DE, "text": "x"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (402, "INSUFFICIENT_BALANCE")
    assert balance(raw) == 1.0
    raw.post("/_sandbox/faults", json={"provider": "dt-a2p", "fault": "timeout", "seconds": 0.05, "times": 1})
    assert post(raw, {"from": "ACME", "to": DE, "text": "x"}).status_code == 201
    assert balance(raw) == pytest.approx(1.0 - PRICE)


def test_sandbox_fault_rules_name_its_endpoints(raw):
    bad = raw.post("/_sandbox/faults", json={"provider": "dt-a2p", "endpoint": "send_message", "fault": "timeout", "seconds": 1})
    assert bad.status_code == 400
    assert "balance, report, send" in bad.json()["error"]


def test_sandbox_session_loss_is_never_taken(raw):
    raw.post("/_sandbox/faults", json={"provider": "dt-a2p", "fault": "session_loss"})
    assert post(raw, {"from": "ACME", "to": DE, "text": "x"}).status_code == 201
    assert len(raw.get("/_sandbox/faults").json()["faults"]) == 1


def test_sandbox_report_needs_the_key(raw):
    message_id = post(raw, {"from": "ACME", "to": DE, "text": "x"}).json()["id"]
    response = raw.get(f"/dt-a2p/v1/sms/{message_id}")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "INVALID_API_KEY")
    assert raw.get("/dt-a2p/v1/sms/abc", headers={"X-API-Key": API_KEY}).json()["error"]["code"] == "MESSAGE_NOT_FOUND"
