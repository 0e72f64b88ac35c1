"""The session-key gateway: the real adapter against the sandbox over HTTP (wire format, orders of
many recipients, sessions, every error class), and the sandbox's own behaviour.

The sandbox runs on a FakeClock, so session expiry and status progression are exact.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import failed_alone, parse_account, sent_alone
from starlette.testclient import TestClient

from sms_worker.clock import FakeClock
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers.accounts import ProvidersFileError
from sms_worker.providers.base import Accepted, OutboundMessage
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.session_key import ORDER_ANSWER_TTL, RELOGIN_AFTER_IDLE, SessionKeyAdapter
from sms_worker.sandbox import SandboxSettings, create_app

PROVIDER = "session-key"
USER, PASSWORD = "sandbox-user", "sandbox-pass"
A, B, C, D = "+393470000001", "+393470000002", "+393470000003", "+393470000004"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: list[tuple[bytes, bytes]]
    body: Any

    def header(self, name: str) -> str | None:
        """A header by its exact spelling on the wire."""
        return next((value.decode() for key, value in self.headers if key == name.encode()), None)


@pytest.fixture
def wire() -> list[Call]:
    return []


def table(base_url: str, password: str = PASSWORD, **options: Any) -> dict[str, Any]:
    """A ``session-key`` account table of the providers file."""
    return {"type": "session-key", "base_url": base_url, "username": USER, "password": password, **options}


@pytest.fixture
def make_provider(fake_sandbox, wire, adapter_client) -> Any:
    def record(request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        path = request.url.path.removeprefix(f"/{PROVIDER}")
        wire.append(Call(request.method, path, dict(request.url.params), list(request.headers.raw), body))

    def make(password: str = PASSWORD, timeout: float = 5.0, monotonic: Any = time.monotonic, **options: Any) -> SessionKeyAdapter:
        client = adapter_client(on_request=record, timeout=timeout)
        account = parse_account(table(f"{fake_sandbox.url}/{PROVIDER}", password=password, **options), PROVIDER)
        return SessionKeyAdapter(PROVIDER, account, client, monotonic=monotonic)

    return make


@pytest.fixture
def offline() -> Iterator[SessionKeyAdapter]:
    """An adapter for what needs no gateway (status words, callbacks)."""
    with httpx.Client() as client:
        yield SessionKeyAdapter(PROVIDER, parse_account(table("http://gateway.invalid"), PROVIDER), client)


def add_fault(sandbox: Any, **rule: Any) -> None:
    sandbox.add_fault(provider=PROVIDER, **rule)


def messages(*recipients: str, text: str = "Ciao", sender: str | None = None) -> list[OutboundMessage]:
    return [OutboundMessage(uuid.uuid4(), to, text, sender=sender) for n, to in enumerate(recipients)]


def posts(wire: list[Call]) -> list[Call]:
    return [call for call in wire if call.method == "POST"]


def accepted(outcome: object) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


# -- the adapter: sending ---------------------------------------------------------------------


def test_send_logs_in_and_posts_the_documented_order(make_provider, wire, fake_sandbox):
    result = sent_alone(make_provider(), OutboundMessage(uuid.uuid4(), A, "Hello world!", sender="ACME"))

    login, post = wire
    assert (login.method, login.path, login.query) == ("GET", "/login", {"username": USER, "password": PASSWORD})
    assert (post.method, post.path) == ("POST", "/sms")
    user_key, session_key = post.header("user_key"), post.header("Session_key")
    assert user_key == "1000" and session_key and len(session_key) == 36
    assert post.body == {"message": "Hello world!", "message_type": "N", "returnCredits": True, "recipient": [A], "sender": "ACME"}
    [submission] = fake_sandbox.submissions(provider=PROVIDER)
    assert result.provider_message_id == submission["message_id"] == f"{submission['params']['order_id']}:{A}"
    assert (result.delivery, result.provider_status, result.segments) == (Delivery.QUEUED, "WAITING", 1)


def test_a_group_of_messages_is_one_request_listing_them_all(make_provider, wire, fake_sandbox):
    batch = messages(A, B, C)
    provider = make_provider()
    assert len({provider.group_key(m) for m in batch}) == 1

    outcomes = provider.send(batch)

    [post] = posts(wire)
    assert post.body["recipient"] == [A, B, C]
    submissions = fake_sandbox.submissions(provider=PROVIDER)
    assert [s["to"] for s in submissions] == [A, B, C]
    assert {s["params"]["order_id"] for s in submissions} == {submissions[0]["params"]["order_id"]}
    assert {s["params"]["recipient_count"] for s in submissions} == {3}
    by_recipient = {s["to"]: s["message_id"] for s in submissions}
    assert [accepted(o).provider_message_id for o in outcomes] == [by_recipient[m.recipient] for m in batch]


def test_orders_respect_max_recipients_and_never_carry_a_phone_twice(make_provider, wire, fake_sandbox):
    batch = messages(A, B, A, C, D)  # the same text to A twice
    outcomes = make_provider(max_recipients=3).send(batch)

    bodies = [post.body["recipient"] for post in posts(wire)]
    assert bodies == [[A, B, C], [A, D]]
    ids = [accepted(o).provider_message_id for o in outcomes]
    assert len(set(ids)) == 5
    assert [i.rpartition(":")[2] for i in ids] == [m.recipient for m in batch]


def test_messages_of_different_groups_never_share_an_order(make_provider, wire):
    provider = make_provider()
    batch = [*messages(A, B, text="one"), *messages(C, text="two"), *messages(D, text="one", sender="ACME")]
    assert len({provider.group_key(m) for m in batch}) == 3

    provider.send(batch)

    assert [(p.body["message"], p.body["sender"], p.body["recipient"]) for p in posts(wire)] == [
        ("one", None, [A, B]),
        ("two", None, [C]),
        ("one", "ACME", [D]),
    ]


def test_quality_is_sent_as_message_type_and_separates_groups(make_provider, wire):
    low, high = make_provider(quality="LL"), make_provider()
    message = OutboundMessage(uuid.uuid4(), A, "Ciao")
    assert low.group_key(message) != high.group_key(message)

    sent_alone(low, message)

    assert posts(wire)[0].body["message_type"] == "LL"


def test_a_whole_order_failure_is_that_error_for_every_message(make_provider, fake_sandbox):
    add_fault(fake_sandbox, endpoint="sms", fault="http_status", status=503)

    outcomes = make_provider().send(messages(A, B, C))

    assert all(isinstance(o, Failure) and (o.kind, o.code) == (ErrorKind.TRANSIENT, "HTTP_503") for o in outcomes)
    assert len(outcomes) == 3
    assert [s["accepted"] for s in fake_sandbox.submissions(provider=PROVIDER)] == [False] * 3


def test_running_out_of_credits_fails_the_order_account_wide():
    app_client = TestClient(create_app(clock=FakeClock(), settings=SandboxSettings(session_key_credits=5)))
    provider = SessionKeyAdapter(PROVIDER, parse_account(table(f"http://testserver/{PROVIDER}"), PROVIDER), app_client)

    first = provider.send(messages(A, B, C))  # 3 credits
    second = provider.send(messages(A, B, C))  # 3 more: too many

    assert all(isinstance(o, Accepted) for o in first)
    assert provider.remaining_credits == 2
    for outcome in second:
        assert isinstance(outcome, Failure)
        assert (outcome.kind, outcome.code, outcome.account_wide) == (ErrorKind.PERMANENT, "NOT_ENOUGH_CREDITS", True)
    assert provider.verify() == "session ok, 2 credits for quality N"


def test_an_invalid_recipient_fails_alone_and_the_rest_is_sent_again(make_provider, wire, fake_sandbox):
    batch = messages(A, "+39", C)

    outcomes = make_provider().send(batch)

    assert [p.body["recipient"] for p in posts(wire)] == [[A, "+39", C], [A, C]]
    refused = outcomes[1]
    assert isinstance(refused, Failure)
    assert (refused.kind, refused.code, refused.account_wide, refused.status) == (
        ErrorKind.PERMANENT,
        "INVALID_RECIPIENT",
        False,
        Status.UNDELIVERABLE,
    )
    assert accepted(outcomes[0]).provider_message_id.endswith(f":{A}")
    assert accepted(outcomes[2]).provider_message_id.endswith(f":{C}")


def test_a_recipient_refused_by_a_fault_rule_is_mapped_to_its_message(make_provider, wire, fake_sandbox):
    add_fault(fake_sandbox, endpoint="sms", to=B, fault="error_code", code="INVALID_RECIPIENT", times=1)

    outcomes = make_provider().send(messages(A, B, C))

    assert isinstance(outcomes[1], Failure) and outcomes[1].code == "INVALID_RECIPIENT"
    assert [accepted(o).provider_status for o in (outcomes[0], outcomes[2])] == ["WAITING", "WAITING"]
    assert [p.body["recipient"] for p in posts(wire)] == [[A, B, C], [A, C]]


def test_a_second_refusal_fails_only_the_numbers_it_names_and_the_rest_waits_for_a_retry(make_provider, wire, fake_sandbox):
    add_fault(fake_sandbox, endpoint="sms", to=A, fault="error_code", code="INVALID_RECIPIENT", times=1)
    add_fault(fake_sandbox, endpoint="sms", to=B, fault="error_code", code="INVALID_RECIPIENT")

    outcomes = make_provider().send(messages(A, B, C, D))

    assert [p.body["recipient"] for p in posts(wire)] == [[A, B, C, D], [B, C, D]]
    assert [(o.kind, o.code) for o in outcomes] == [
        (ErrorKind.PERMANENT, "INVALID_RECIPIENT"),
        (ErrorKind.PERMANENT, "INVALID_RECIPIENT"),
        (ErrorKind.TRANSIENT, "ORDER_REFUSED"),
        (ErrorKind.TRANSIENT, "ORDER_REFUSED"),
    ]
    assert all(C not in o.text and D not in o.text and B not in outcomes[0].text for o in outcomes), "no message carries another's number"
    assert not any(s["accepted"] for s in fake_sandbox.submissions())


# -- the adapter: sessions -----------------------------------------------------------------


def test_a_lost_session_logs_in_again_once_and_resends(make_provider, wire, fake_sandbox):
    provider = make_provider()
    provider.open()
    add_fault(fake_sandbox, endpoint="sms", fault="session_loss", times=1)

    result = sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "Ciao"))

    assert [(c.method, c.path) for c in wire] == [("GET", "/login"), ("POST", "/sms"), ("GET", "/login"), ("POST", "/sms")]
    assert wire[1].header("Session_key") != wire[3].header("Session_key")
    assert result.delivery is Delivery.QUEUED
    assert [s["code"] for s in fake_sandbox.submissions(provider=PROVIDER)] == ["UNAUTHORIZED", "OK"]


def test_a_session_lost_twice_in_a_row_is_transient(make_provider, fake_sandbox):
    provider = make_provider()
    add_fault(fake_sandbox, endpoint="sms", fault="session_loss", times=2)

    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), A, "Ciao"))

    assert (caught.kind, caught.code) == (ErrorKind.TRANSIENT, "UNAUTHORIZED")
    assert sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "Ciao")).delivery is Delivery.QUEUED


def test_the_session_is_reused_renewed_when_idle_and_when_it_expired_unseen(make_provider, wire, sandbox_clock):
    monotonic = Monotonic()
    provider = make_provider(monotonic=monotonic)
    sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "1"))
    sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "2"))
    assert [c.path for c in wire] == ["/login", "/sms", "/sms"]

    monotonic.now += RELOGIN_AFTER_IDLE
    sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "3"))
    assert [c.path for c in wire][3:] == ["/login", "/sms"]

    sandbox_clock.advance(5 * 60)  # the gateway forgets the session; the adapter cannot know
    sent_alone(provider, OutboundMessage(uuid.uuid4(), A, "4"))
    assert [c.path for c in wire][5:] == ["/sms", "/login", "/sms"]


def test_a_wrong_password_is_a_permanent_account_wide_fault(make_provider, wire):
    caught = failed_alone(make_provider(password="wrong"), OutboundMessage(uuid.uuid4(), A, "Ciao"))

    assert (caught.kind, caught.code, caught.account_wide) == (ErrorKind.PERMANENT, "BAD_CREDENTIALS", True)
    assert [c.path for c in wire] == ["/login"]


# -- the adapter: errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "code", "account_wide", "status"),
    [
        ({"fault": "http_status", "status": 503}, ErrorKind.TRANSIENT, "HTTP_503", False, None),
        ({"fault": "http_status", "status": 429}, ErrorKind.TRANSIENT, "HTTP_429", False, None),
        ({"fault": "http_status", "status": 404}, ErrorKind.PERMANENT, "HTTP_404", True, None),
        ({"fault": "timeout", "seconds": 1.0}, ErrorKind.AMBIGUOUS, "TIMEOUT", False, None),
        ({"fault": "error_code", "code": "NOT_ENOUGH_CREDITS"}, ErrorKind.PERMANENT, "NOT_ENOUGH_CREDITS", True, None),
        ({"fault": "error_code", "code": "USER_KEY_NOT_FOUND"}, ErrorKind.PERMANENT, "USER_KEY_NOT_FOUND", True, None),
        ({"fault": "error_code", "code": "INVALID_SENDER"}, ErrorKind.PERMANENT, "INVALID_SENDER", False, Status.REJECTED),
        ({"fault": "error_code", "code": "INVALID_RECIPIENT"}, ErrorKind.PERMANENT, "INVALID_RECIPIENT", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "INVALID_PARAMETER"}, ErrorKind.PERMANENT, "INVALID_PARAMETER", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "MISSING_PARAMETER"}, ErrorKind.PERMANENT, "MISSING_PARAMETER", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "SOMETHING_NEW"}, ErrorKind.PERMANENT, "SOMETHING_NEW", False, Status.UNDELIVERABLE),
    ],
)
def test_errors_are_classified(make_provider, fake_sandbox, fault, kind, code, account_wide, status):
    provider = make_provider(timeout=0.3)
    add_fault(fake_sandbox, endpoint="sms", **fault)

    caught = failed_alone(provider, OutboundMessage(uuid.uuid4(), A, "Ciao"))

    assert (caught.kind, caught.code, caught.account_wide) == (kind, code, account_wide)
    if status is not None:
        assert caught.status is status


def test_an_unauthorized_error_code_logs_in_again(make_provider, wire, fake_sandbox):
    add_fault(fake_sandbox, endpoint="sms", fault="error_code", code="UNAUTHORIZED", times=1)
    assert sent_alone(make_provider(), OutboundMessage(uuid.uuid4(), A, "Ciao")).delivery is Delivery.QUEUED
    assert [c.path for c in wire] == ["/login", "/sms", "/login", "/sms"]


def test_errors_at_login_are_classified(make_provider, fake_sandbox):
    add_fault(fake_sandbox, endpoint="login", fault="http_status", status=502, times=1)
    provider = make_provider()
    with pytest.raises(ProviderError) as caught:
        provider.open()
    assert (caught.value.kind, caught.value.code) == (ErrorKind.TRANSIENT, "HTTP_502")
    provider.open()


def test_a_login_that_times_out_is_transient_for_the_message_never_sent(make_provider, fake_sandbox):
    add_fault(fake_sandbox, endpoint="login", fault="timeout", seconds=1.0, times=1)
    caught = failed_alone(make_provider(timeout=0.3), OutboundMessage(uuid.uuid4(), A, "Ciao"))
    assert (caught.kind, caught.code) == (ErrorKind.TRANSIENT, "TIMEOUT"), "no message went out: another account may carry it"
    assert fake_sandbox.submissions(provider=PROVIDER) == [], "nothing was submitted"


def test_the_gateway_refuses_a_custom_sender_on_low_quality(make_provider):
    caught = failed_alone(make_provider(quality="L"), OutboundMessage(uuid.uuid4(), A, "Ciao", sender="ACME"))
    assert (caught.kind, caught.code, caught.status) == (ErrorKind.PERMANENT, "INVALID_SENDER", Status.REJECTED)


def test_the_gateway_refuses_a_long_text_on_lowest_quality(make_provider):
    caught = failed_alone(make_provider(quality="LL"), OutboundMessage(uuid.uuid4(), A, "x" * 161))
    assert (caught.kind, caught.code) == (ErrorKind.PERMANENT, "INVALID_PARAMETER")


# -- the adapter: status, callbacks, verify, configuration -------------------------------------


def test_check_follows_each_recipient_of_an_order(make_provider, wire, fake_sandbox, sandbox_clock):
    add_fault(fake_sandbox, endpoint="sms", to=B, fault="final_status", status="UNDELIVERABLE")
    monotonic = Monotonic()
    provider = make_provider(monotonic=monotonic)
    outcomes = provider.send(messages(A, B))
    first, second = (accepted(o).provider_message_id for o in outcomes)
    assert provider.check(first).delivery is Delivery.QUEUED

    sandbox_clock.advance(5)
    assert provider.check(second).delivery is Delivery.QUEUED, "within a second, the order's answer serves its other recipients"
    monotonic.now += ORDER_ANSWER_TTL
    delivered, failed = provider.check(first), provider.check(second)

    order_id = first.rpartition(":")[0]
    assert [(c.method, c.path) for c in wire if c.path.startswith("/sms/")] == [("GET", f"/sms/{order_id}")] * 2
    assert wire[-1].header("user_key") == "1000" and wire[-1].header("Session_key")
    assert (delivered.provider_status, delivered.delivery) == ("DLVRD", Delivery.DELIVERED)
    assert abs((delivered.delivered_at - sandbox_clock.now()).total_seconds()) < 10
    assert (failed.provider_status, failed.delivery, failed.delivered_at) == ("ERROR", Delivery.UNDELIVERABLE, None)


def test_check_of_an_unknown_order_is_permanent_for_that_message_only(make_provider):
    with pytest.raises(ProviderError) as caught:
        make_provider().check(f"no-such-order:{A}")
    assert (caught.value.kind, caught.value.code, caught.value.account_wide) == (ErrorKind.PERMANENT, "ORDER_NOT_FOUND", False)


@pytest.mark.parametrize(
    ("word", "delivery"),
    [
        ("WAITING", Delivery.QUEUED),
        ("SCHEDULED", Delivery.QUEUED),
        ("SENT", Delivery.SENT),
        ("WAIT4DLVR", Delivery.SENT),
        ("DLVRD", Delivery.DELIVERED),
        ("ERROR", Delivery.UNDELIVERABLE),
        ("TIMEOUT", Delivery.EXPIRED),
        ("TOOM4NUM", Delivery.REJECTED),
        ("TOOM4USER", Delivery.REJECTED),
        ("UNKNPFX", Delivery.UNDELIVERABLE),
        ("UNKNRCPT", Delivery.UNDELIVERABLE),
        ("KO", Delivery.REJECTED),
        ("DEMO", Delivery.UNDELIVERABLE),
        ("WHATEVER", None),  # a word the family's documents do not name: recorded, maps to nothing
    ],
)
def test_status_words_map_to_canonical_statuses(offline, word, delivery):
    assert offline.delivery(word) is delivery


def test_parse_callback_reads_one_report_per_recipient(offline):
    body = json.dumps(
        {
            "order_id": "o-1",
            "recipients": [
                {"destination": A, "status": "DLVRD", "delivery_date": "20300101130005"},
                {"destination": B.lstrip("+"), "status": "TOOM4NUM", "delivery_date": None},
            ],
        }
    ).encode()

    delivered, denied = offline.parse_callback(body, "application/json")  # B spelled without "+": still B

    assert (delivered.provider_message_id, delivered.delivery) == (f"o-1:{A}", Delivery.DELIVERED)
    assert delivered.delivered_at == datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)
    assert (denied.provider_message_id, denied.delivery, denied.delivered_at) == (f"o-1:{B}", Delivery.REJECTED, None)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"order_id": "o"}', b'{"order_id": "o", "recipients": [{"status": "DLVRD"}]}'])
def test_parse_callback_refuses_garbage(offline, body):
    with pytest.raises(ValueError):
        offline.parse_callback(body, "application/json")


def test_verify_logs_in_afresh_and_reports_the_credits(make_provider, wire):
    provider = make_provider(quality="L")
    provider.open()
    assert provider.verify() == "session ok, 1000000 credits for quality L"
    assert [(c.method, c.path) for c in wire] == [("GET", "/login"), ("GET", "/login"), ("GET", "/status")]
    assert wire[-1].header("user_key") == "1000"


def test_the_account_table_gives_credentials_and_options():
    with httpx.Client() as client:
        provider = SessionKeyAdapter("sk", parse_account(table("http://gateway.test/API", quality="LL", max_recipients=250, timezone="UTC")), client)
        default = SessionKeyAdapter("sk", parse_account(table("http://gateway.test/API")), client)
    assert (provider.name, provider.quality, provider.max_recipients) == ("sk", "LL", 250)
    assert (default.quality, default.max_recipients) == ("N", 100)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"quality": "H"}, "quality"),
        ({"max_recipients": 0}, "max_recipients"),
        ({"max_recipients": 1001}, "max_recipients"),
        ({"max_recipients": "50"}, "max_recipients"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_the_account_table_refuses_bad_options(options, field):
    with pytest.raises(ProvidersFileError, match=f"accounts.sk.{field}: "):
        parse_account(table("http://gateway.test/API", **options), "sk")


def test_the_account_table_needs_both_credentials():
    bare = table("http://gateway.test")
    del bare["password"]
    with pytest.raises(ProvidersFileError, match="accounts.sk.password: is required"):
        parse_account(bare, "sk")


# -- the sandbox itself ------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # 2030-01-01 12:00 UTC, 13:00 in Rome


@pytest.fixture
def client(clock: FakeClock) -> TestClient:
    return TestClient(create_app(clock=clock, settings=SandboxSettings(session_key_credits=10)))


def login(client: TestClient) -> dict[str, str]:
    response = client.get(f"/{PROVIDER}/login", params={"username": USER, "password": PASSWORD})
    assert response.status_code == 200, response.text
    user_key, session_key = response.text.split(";")
    return {"user_key": user_key, "Session_key": session_key}


def order(client: TestClient, headers: dict[str, str], **fields: Any) -> httpx.Response:
    body = {"message": "Hello world!", "message_type": "N", "returnCredits": True, "recipient": [A], **fields}
    return client.post(f"/{PROVIDER}/sms", headers=headers, json=body)


def state(client: TestClient, headers: dict[str, str], order_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/{PROVIDER}/sms/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["recipients"])


def sandbox_fault(client: TestClient, **rule: Any) -> None:
    response = client.post("/_sandbox/faults", json={"provider": PROVIDER, **rule})
    assert response.status_code == 201, response.text


def submissions(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/_sandbox/submissions", params={"provider": PROVIDER}).json()["submissions"])


def test_sandbox_login_refuses_wrong_or_missing_credentials(client):
    wrong = client.get(f"/{PROVIDER}/login", params={"username": USER, "password": "nope"})
    missing = client.get(f"/{PROVIDER}/login", params={"username": USER})
    assert (wrong.status_code, wrong.json()["code"]) == (404, "BAD_CREDENTIALS")
    assert (missing.status_code, missing.json()["code"]) == (400, "MISSING_PARAMETER")


def test_sandbox_send_needs_both_headers_of_a_live_session(client, clock):
    headers = login(client)
    assert order(client, {}).status_code == 401
    assert order(client, {**headers, "user_key": "9999"}).json()["code"] == "USER_KEY_NOT_FOUND"
    assert order(client, {**headers, "Session_key": "forged"}).status_code == 401

    clock.advance(4 * 60)
    assert order(client, headers).status_code == 201  # use refreshes the session
    clock.advance(5 * 60)
    assert (order(client, headers).status_code, order(client, headers).json()["code"]) == (401, "UNAUTHORIZED")


def test_sandbox_answers_the_documented_201_and_charges_credits_per_part_and_recipient(client):
    headers = login(client)
    first = order(client, headers, recipient=[A, B], message="x" * 161)  # 2 parts x 2 recipients
    second = order(client, headers, returnCredits=False)

    assert first.status_code == 201
    body = first.json()
    assert set(body) == {"result", "order_id", "total_sent", "remaining_credits", "internal_order_id"}
    assert (body["result"], body["total_sent"], body["remaining_credits"]) == ("OK", 2, 6)
    assert "remaining_credits" not in second.json()
    status = client.get(f"/{PROVIDER}/status", headers=headers).json()
    assert status["sms"] == [{"type": q, "quantity": 5} for q in ("N", "L", "LL")]

    refused = order(client, headers, recipient=[A, B, C], message="x" * 161)
    assert (refused.status_code, refused.json()["code"]) == (400, "NOT_ENOUGH_CREDITS")
    client.post("/_sandbox/reset")
    assert client.get(f"/{PROVIDER}/status", headers=login(client)).json()["sms"][0]["quantity"] == 10


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"message": ""}, "MISSING_PARAMETER"),
        ({"message": "x" * 1001}, "INVALID_PARAMETER"),
        ({"message_type": "GP"}, "INVALID_PARAMETER"),
        ({"recipient": []}, "MISSING_PARAMETER"),
        ({"recipient": A}, "INVALID_PARAMETER"),
        ({"message_type": "L", "sender": "ACME"}, "INVALID_SENDER"),
        ({"sender": "MUCH-TOO-LONG-NAME"}, "INVALID_SENDER"),
        ({"scheduled_delivery_time": "23/12/2017"}, "INVALID_PARAMETER"),
        ({"returnCredits": "yes"}, "INVALID_PARAMETER"),
    ],
)
def test_sandbox_refuses_bad_orders_with_a_code(client, fields, code):
    response = order(client, login(client), **fields)
    assert (response.status_code, response.json()["result"], response.json()["code"]) == (400, "KO", code)


def test_sandbox_names_the_invalid_recipients(client):
    response = order(client, login(client), recipient=[A, "12", "+39abc"])
    assert response.json()["code"] == "INVALID_RECIPIENT"
    assert response.json()["recipients"] == ["12", "+39abc"]


def test_sandbox_statuses_follow_the_clock_per_recipient(client, clock):
    headers = login(client)
    order_id = order(client, headers, recipient=[A, B], scheduled_delivery_time="20300101140000").json()["order_id"]
    assert {r["status"] for r in state(client, headers, order_id)} == {"SCHEDULED"}

    clock.advance(3600)  # 14:00 in Rome; the session has expired meanwhile
    headers = login(client)
    assert [r["status"] for r in state(client, headers, order_id)] == ["WAITING", "WAITING"]
    clock.advance(0.4)
    assert [r["status"] for r in state(client, headers, order_id)] == ["SENT", "SENT"]
    clock.advance(0.4)
    recipients = state(client, headers, order_id)
    assert [(r["destination"], r["status"]) for r in recipients] == [(A, "DLVRD"), (B, "DLVRD")]
    assert recipients[0]["delivery_date"] == "20300101140000"
    assert client.get(f"/{PROVIDER}/sms/unknown", headers=headers).status_code == 404


def test_sandbox_records_one_entry_per_recipient_refused_or_not(client):
    headers = login(client)
    order_id = order(client, headers, recipient=[A, B], sender="ACME").json()["order_id"]
    order(client, headers, recipient=[C], message_type="X")

    records = submissions(client)
    assert [(r["to"], r["accepted"], r["code"], r["message_id"]) for r in records] == [
        (A, True, "OK", f"{order_id}:{A}"),
        (B, True, "OK", f"{order_id}:{B}"),
        (C, False, "INVALID_PARAMETER", None),
    ]
    assert records[0]["params"] == {
        "order_id": order_id,
        "recipient_count": 2,
        "message_type": "N",
        "returnCredits": True,
        "scheduled_delivery_time": None,
    }
    assert (records[0]["from"], records[0]["text"], records[0]["parts"]) == ("ACME", "Hello world!", 1)
    assert not any(headers["Session_key"] in json.dumps(r) for r in records)


def test_sandbox_final_status_fault_targets_one_recipient(client, clock):
    headers = login(client)
    sandbox_fault(client, endpoint="sms", to=B, fault="final_status", status="DENIED")
    sandbox_fault(client, endpoint="sms", fault="latency", ms=1)  # a rule without `to` does not hide it
    order_id = order(client, headers, recipient=[A, B]).json()["order_id"]
    clock.advance(5)
    assert [r["status"] for r in state(client, headers, order_id)] == ["DLVRD", "KO"]


def test_sandbox_session_loss_drops_every_session(client):
    headers = login(client)
    sandbox_fault(client, endpoint="status", fault="session_loss", times=1)
    assert client.get(f"/{PROVIDER}/status", headers=headers).status_code == 401
    assert order(client, headers).status_code == 401


def test_sandbox_http_status_and_error_code_faults(client):
    headers = login(client)
    sandbox_fault(client, endpoint="sms", fault="http_status", status=503, times=1)
    sandbox_fault(client, endpoint="login", fault="error_code", code="BAD_CREDENTIALS", times=1)
    bare = order(client, headers, recipient=[A, B])
    assert (bare.status_code, bare.text) == (503, "503 Service Unavailable")
    assert client.get(f"/{PROVIDER}/login", params={"username": USER, "password": PASSWORD}).status_code == 404
    assert [(r["to"], r["code"]) for r in submissions(client)] == [(A, "HTTP_503"), (B, "HTTP_503")]


def test_sandbox_latency_holds_the_answer_after_the_work(client):
    headers = login(client)
    sandbox_fault(client, endpoint="sms", fault="latency", ms=300, times=1)
    started = time.monotonic()
    response = order(client, headers)
    assert response.status_code == 201 and time.monotonic() - started >= 0.3
    assert submissions(client)[0]["accepted"] is True
