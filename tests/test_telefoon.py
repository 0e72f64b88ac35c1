"""Telefoon: the adapter against the sandbox over HTTP, and the sandbox on its own.

Every request the adapter (or a test) sends and every answer the sandbox gives is validated
against the provider's OpenAPI document as it happens, by httpx event hooks: requests and
responses of every operation, error answers where the document defines them, and the assumed
error body (``{"error_code": int, "error_message": str}``) where it does not.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from conftest import ThreadedSandbox, failed_alone, parse_account, sent_alone
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from starlette.testclient import TestClient
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sms_worker.clock import FakeClock
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.providers import telefoon
from sms_worker.providers.accounts import ProvidersFileError
from sms_worker.providers.base import Accepted, DeliveryReceipt, OutboundMessage
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.telefoon import TelefoonAdapter
from sms_worker.sandbox.app import create_app
from sms_worker.sandbox.telefoon import vocabulary

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "telefoon-sms-openapi.yml"
KEY = "sandbox-telefoon-key"
API_PATH = "/telefoon/v1/sms"
ERROR_BODY = {
    "type": "object",
    "required": ["error_code", "error_message"],
    "properties": {"error_code": {"type": "integer"}, "error_message": {"type": "string"}},
    "additionalProperties": False,
}
"""The error body the document does not define and the adapter assumes."""
MESSAGE = OutboundMessage(uuid.uuid4(), "+31612345678", "Hallo wereld")


# --- validation against the OpenAPI document -------------------------------------------------


class SpecRequest:
    """An httpx request as openapi-core reads it, moved from the sandbox's base onto the
    document's server URL (``https://api.telefoon.com/v1/sms``) so its paths match."""

    def __init__(self, request: httpx.Request, server: str) -> None:
        server_url = httpx.URL(server)
        self.host_url = f"{server_url.scheme}://{server_url.host}"
        self.path = server_url.path + request.url.path.split(API_PATH, 1)[1]
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.url.params.multi_items()),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


class Wire:
    """Event hooks that validate each exchange and keep it for the test to look at.

    ``check_requests=False`` is for tests that send what the document forbids on purpose; the
    answers are still validated.
    """

    def __init__(self, openapi: OpenAPI, check_requests: bool = True) -> None:
        self.openapi = openapi
        self.server = openapi.spec["servers"][0]["url"]
        self.check_requests = check_requests
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.hooks: dict[str, list[Callable[..., None]]] = {"request": [self.on_request], "response": [self.on_response]}

    def spec_request(self, request: httpx.Request) -> SpecRequest:
        return SpecRequest(request, self.server)

    def on_request(self, request: httpx.Request) -> None:
        if API_PATH not in request.url.path:  # /_sandbox control calls are not Telefoon's API
            return
        if self.check_requests:
            self.openapi.validate_request(self.spec_request(request))
        self.requests.append(request)

    def on_response(self, response: httpx.Response) -> None:
        if API_PATH not in response.request.url.path:
            return
        response.read()
        try:
            self.openapi.validate_response(self.spec_request(response.request), SpecResponse(response))
        except ResponseNotFound:
            assert response.status_code >= 400, f"{response.status_code} is not in the document"
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            jsonschema.validate(response.json(), ERROR_BODY)
        self.responses.append(response)


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    if not SPEC_PATH.exists():
        pytest.skip(f"Telefoon's OpenAPI document is not at {SPEC_PATH}: nothing to validate the wire against")
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture
def wire(openapi: OpenAPI) -> Wire:
    return Wire(openapi)


def test_the_validation_refuses_what_the_document_forbids(wire: Wire) -> None:
    """The hooks have teeth: what the document rules out fails them."""
    too_big = httpx.Request("GET", f"http://sandbox{API_PATH}/messages", params={"page_size": 101}, headers={"X-API-Key": "k"})
    no_key = httpx.Request("POST", f"http://sandbox{API_PATH}/messages", json={"to": "+31612345678", "from": "ACME"})
    no_from = httpx.Request("POST", f"http://sandbox{API_PATH}/messages", json={"to": "+31612345678"}, headers={"X-API-Key": "k"})
    for request in (too_big, no_key, no_from):
        with pytest.raises(OpenAPIError):
            wire.on_request(request)
    get = httpx.Request("GET", f"http://sandbox{API_PATH}/messages/TF1", headers={"X-API-Key": "k"})
    message = {"id": "TF1", "status": "queued", "direction": "outbound", "from": "ACME", "to": "+31612345678"}
    wire.on_response(httpx.Response(200, json=message, request=get))
    for bad in ({**message, "date_sent": None}, {**message, "date_created": "yesterday"}, {**message, "status": "lost"}):
        with pytest.raises(OpenAPIError):
            wire.on_response(httpx.Response(200, json=bad, request=get))
    with pytest.raises(jsonschema.ValidationError):
        wire.on_response(httpx.Response(404, json={"error": "gone"}, request=get))


# --- the adapter against the sandbox over HTTP ----------------------------------------------


@pytest.fixture(scope="module")
def telefoon_clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture(scope="module")
def served(telefoon_clock: FakeClock) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(clock=telefoon_clock) as server:
        yield server


@pytest.fixture
def telefoon_sandbox(served: ThreadedSandbox) -> ThreadedSandbox:
    """One real sandbox for the module (starting one per test costs most of the time), reset
    before each test: messages, submissions and fault rules forgotten; ids keep counting."""
    httpx.post(f"{served.url}/_sandbox/reset").raise_for_status()
    return served


def add_fault(sandbox: ThreadedSandbox, **rule: Any) -> dict:
    return sandbox.add_fault(provider="telefoon", **rule)


@pytest.fixture
def make_provider(telefoon_sandbox: Any, wire: Wire, adapter_client: Callable[..., httpx.Client]) -> Callable[..., TelefoonAdapter]:
    def make(api_key: str = KEY, timeout: float = 5.0, **options: Any) -> TelefoonAdapter:
        client = adapter_client(on_request=wire.on_request, on_response=wire.on_response, timeout=timeout)
        table = config(f"{telefoon_sandbox.url}{API_PATH}", api_key, default_sender="ACME", **options)
        return TelefoonAdapter("telefoon-nl", parse_account(table), client)

    return make


def test_send_posts_the_documented_json(make_provider, wire, telefoon_sandbox) -> None:
    options = {"sender_id": "ACMEBANK", "status_callback": "https://hooks.example.com/telefoon", "gdpr_consent_ref": "consent-42"}
    accepted = sent_alone(make_provider(**options), MESSAGE)

    [request] = wire.requests
    assert (request.method, request.url.path) == ("POST", f"{API_PATH}/messages")
    assert (request.headers["x-api-key"], request.headers["content-type"]) == (KEY, "application/json")
    assert json.loads(request.content) == {"to": "+31612345678", "from": "ACME", "body": "Hallo wereld", **options}
    assert wire.responses[0].status_code == 201
    [submission] = telefoon_sandbox.submissions(provider="telefoon")
    assert accepted == Accepted(submission["message_id"], "queued", Delivery.QUEUED, 1)
    assert submission["params"] == options
    assert KEY not in json.dumps(submission)


def test_the_message_sender_wins(make_provider, wire) -> None:
    sent_alone(make_provider(), OutboundMessage(uuid.uuid4(), "+31612345678", "Hoi", sender="+31201234567"))
    assert json.loads(wire.requests[0].content) == {"to": "+31612345678", "from": "+31201234567", "body": "Hoi"}


def test_check_follows_the_status_over_the_clock(make_provider, wire, telefoon_clock) -> None:
    provider = make_provider()
    message_id = sent_alone(provider, MESSAGE).provider_message_id
    seen = []
    for seconds in (0, 0.35, 0.3):
        telefoon_clock.advance(seconds)
        report = provider.check(message_id)
        seen.append((report.provider_status, report.delivery))

    assert seen == [("queued", Delivery.QUEUED), ("sent", Delivery.SENT), ("delivered", Delivery.DELIVERED)]
    assert {(r.method, r.url.path) for r in wire.requests[1:]} == {("GET", f"{API_PATH}/messages/{message_id}")}


def test_message_reads_the_whole_record(make_provider, telefoon_clock) -> None:
    provider = make_provider()
    sent_at = telefoon_clock.now()
    message_id = sent_alone(provider, OutboundMessage(uuid.uuid4(), "+31612345678", "x" * 161)).provider_message_id
    telefoon_clock.advance(1)

    record = provider.message(message_id)

    assert (record.status, record.canonical, record.direction) == ("delivered", Delivery.DELIVERED, "outbound")
    assert (record.sender, record.to, record.body) == ("ACME", "+31612345678", "x" * 161)
    assert (record.num_segments, record.price, record.price_unit) == (2, "0.1500", "EUR")
    assert record.date_created is not None and record.date_created.tzinfo is not None
    assert abs((record.date_created - sent_at).total_seconds()) < 1
    assert record.date_sent is not None and record.date_sent >= record.date_created
    assert (record.error_code, record.error_message) == (None, None)


@pytest.mark.parametrize(
    ("final", "word", "delivery", "error_code"),
    [
        ("UNDELIVERABLE", "undelivered", Delivery.UNDELIVERABLE, 30003),
        ("EXPIRED", "undelivered", Delivery.EXPIRED, 30001),
        ("DENIED", "failed", Delivery.REJECTED, 30007),
        ("UNKNOWN", "failed", Delivery.UNDETERMINED, 30008),
        ("SENDING", "sending", Delivery.QUEUED, None),
    ],
)
def test_a_final_status_fault_reaches_the_check(make_provider, telefoon_sandbox, telefoon_clock, final, word, delivery, error_code) -> None:
    provider = make_provider()
    add_fault(telefoon_sandbox, endpoint="send", fault="final_status", status=final)
    message_id = sent_alone(provider, MESSAGE).provider_message_id
    telefoon_clock.advance(1)

    report = provider.check(message_id)
    record = provider.message(message_id)
    assert report == DeliveryReceipt(message_id, word, delivery, provider_error=record.failure)
    assert report.delivery is delivery
    assert record.error_code == error_code
    assert record.failure == (None if error_code is None else f"{error_code}: {record.error_message}")


# (code, HTTP status, kind, account-wide, final status): the assumed table, spelled out again.
ERROR_TABLE = [
    (20001, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (20003, 401, ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
    (20404, 404, ErrorKind.PERMANENT, False, Status.UNKNOWN),
    (20429, 429, ErrorKind.TRANSIENT, False, None),
    (20500, 500, ErrorKind.TRANSIENT, False, None),
    (20503, 503, ErrorKind.TRANSIENT, False, None),
    (21211, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (21212, 400, ErrorKind.PERMANENT, False, Status.REJECTED),
    (21602, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (21603, 400, ErrorKind.PERMANENT, False, Status.REJECTED),
    (21604, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (21609, 400, ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
    (21610, 400, ErrorKind.PERMANENT, False, Status.REJECTED),
    (30001, 400, ErrorKind.PERMANENT, False, Status.EXPIRED),
    (30002, 403, ErrorKind.PERMANENT, True, Status.UNDELIVERABLE),
    (30003, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (30005, 400, ErrorKind.PERMANENT, False, Status.UNDELIVERABLE),
    (30007, 400, ErrorKind.PERMANENT, False, Status.REJECTED),
    (30008, 400, ErrorKind.PERMANENT, False, Status.UNKNOWN),
]


def test_the_error_table_is_the_same_in_adapter_and_sandbox() -> None:
    assert set(telefoon.ERRORS) == set(vocabulary.ERRORS) == {row[0] for row in ERROR_TABLE}


@pytest.mark.parametrize(("code", "http_status", "kind", "account_wide", "status"), ERROR_TABLE)
def test_every_error_code_is_classified(make_provider, wire, telefoon_sandbox, code, http_status, kind, account_wide, status) -> None:
    add_fault(telefoon_sandbox, endpoint="send", fault="error_code", code=str(code))
    caught = failed_alone(make_provider(), MESSAGE)

    assert wire.responses[-1].status_code == http_status
    error = caught
    assert (error.kind, error.code, error.account_wide) == (kind, str(code), account_wide)
    assert error.text == vocabulary.ERRORS[code][1]
    if status is not None:
        assert error.status is status


@pytest.mark.parametrize(
    ("fault", "kind", "code", "account_wide"),
    [
        ({"fault": "http_status", "status": 503}, ErrorKind.TRANSIENT, "HTTP_503", False),
        ({"fault": "http_status", "status": 429}, ErrorKind.TRANSIENT, "HTTP_429", False),
        ({"fault": "http_status", "status": 401}, ErrorKind.PERMANENT, "HTTP_401", True),
        ({"fault": "http_status", "status": 404}, ErrorKind.PERMANENT, "HTTP_404", True),
        ({"fault": "http_status", "status": 400}, ErrorKind.PERMANENT, "HTTP_400", False),
        ({"fault": "error_code", "code": "29999"}, ErrorKind.PERMANENT, "HTTP_400", False),
        ({"fault": "timeout", "seconds": 1.0}, ErrorKind.AMBIGUOUS, "TIMEOUT", False),
    ],
)
def test_answers_without_a_known_code_are_classified_by_http_status(make_provider, telefoon_sandbox, fault, kind, code, account_wide) -> None:
    add_fault(telefoon_sandbox, endpoint="send", **fault)
    caught = failed_alone(make_provider(timeout=0.3), MESSAGE)
    assert (caught.kind, caught.code, caught.account_wide) == (kind, code, account_wide)


def test_a_timed_out_send_was_still_accepted(make_provider, telefoon_sandbox) -> None:
    add_fault(telefoon_sandbox, endpoint="send", fault="timeout", seconds=1.0)
    assert failed_alone(make_provider(timeout=0.3), MESSAGE).kind is ErrorKind.AMBIGUOUS
    [submission] = telefoon_sandbox.submissions(provider="telefoon")
    assert submission["accepted"] is True
    assert make_provider().check(submission["message_id"]).delivery is Delivery.QUEUED


def test_a_bad_key_is_an_account_wide_permanent_fault(make_provider, telefoon_sandbox) -> None:
    provider = make_provider(api_key="wrong-key")
    failures = [failed_alone(provider, MESSAGE)]
    for call in (provider.verify, lambda: provider.check("TF100000")):
        with pytest.raises(ProviderError) as caught:
            call()
        failures.append(caught.value.failure)
    for failure in failures:
        assert (failure.kind, failure.code, failure.account_wide) == (ErrorKind.PERMANENT, "20003", True)
    [submission] = telefoon_sandbox.submissions(provider="telefoon")
    assert (submission["accepted"], submission["code"]) == (False, "20003")


@pytest.mark.parametrize(
    ("message", "code", "status"),
    [
        (OutboundMessage(uuid.uuid4(), "0612345678", "Hoi"), "21211", Status.UNDELIVERABLE),
        (OutboundMessage(uuid.uuid4(), "+31612345678", "Hoi", sender="WAYTOOLONGSENDER"), "21212", Status.REJECTED),
        (OutboundMessage(uuid.uuid4(), "+31612345678", ""), "21602", Status.UNDELIVERABLE),
    ],
)
def test_a_refused_message_ends_in_its_final_status(make_provider, telefoon_sandbox, message, code, status) -> None:
    caught = failed_alone(make_provider(), message)
    error = caught
    assert (error.kind, error.code, error.account_wide, error.status) == (ErrorKind.PERMANENT, code, False, status)
    [submission] = telefoon_sandbox.submissions(provider="telefoon")
    assert (submission["accepted"], submission["code"], submission["to"]) == (False, code, message.recipient)


def test_an_erased_message_is_gone(make_provider, wire) -> None:
    provider = make_provider()
    message_id = sent_alone(provider, MESSAGE).provider_message_id

    provider.delete_message(message_id)

    assert (wire.requests[-1].method, wire.requests[-1].url.path) == ("DELETE", f"{API_PATH}/messages/{message_id}")
    assert wire.responses[-1].status_code == 204
    for call in (provider.check, provider.delete_message):
        with pytest.raises(ProviderError) as caught:
            call(message_id)
        error = caught.value
        assert (error.kind, error.code, error.account_wide, error.status) == (ErrorKind.PERMANENT, "20404", False, Status.UNKNOWN)
    assert list(provider.messages()) == []


def test_messages_pages_through_every_result(make_provider, wire) -> None:
    provider = make_provider()
    sent = [sent_alone(provider, OutboundMessage(uuid.uuid4(), "+31612345678", f"Bericht {i}")).provider_message_id for i in range(5)]
    wire.requests.clear()

    listed = [message.id for message in provider.messages(page_size=2)]

    assert listed == sent
    pages = [dict(request.url.params) for request in wire.requests]
    assert pages == [{"page": str(n), "page_size": "2"} for n in (1, 2, 3)]


def test_messages_filters_by_status_and_direction(make_provider, telefoon_sandbox, telefoon_clock) -> None:
    provider = make_provider()
    early = [sent_alone(provider, MESSAGE).provider_message_id for _ in range(2)]
    telefoon_clock.advance(1)
    late = sent_alone(provider, MESSAGE).provider_message_id
    reply = httpx.post(f"{telefoon_sandbox.url}/telefoon/_sandbox/inbound", json={"from": "+31612345678", "to": "+3197010000000", "body": "STOP"})
    assert reply.status_code == 201

    assert [m.id for m in provider.messages(status="delivered")] == early
    assert [m.id for m in provider.messages(status="queued")] == [late]
    assert [m.id for m in provider.messages(direction="outbound")] == [*early, late]
    [inbound] = provider.messages(direction="inbound")
    assert (inbound.id, inbound.status, inbound.canonical, inbound.body) == (reply.json()["id"], "received", None, "STOP")


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"page_size": 101}, "page_size"), ({"page_size": 0}, "page_size"), ({"direction": "sideways"}, "direction"), ({"status": "lost"}, "status")],
)
def test_messages_refuses_filters_the_api_would(make_provider, wire, filters, field) -> None:
    with pytest.raises(ValueError, match=field):
        make_provider().messages(**filters)
    assert wire.requests == []


def test_verify_proves_the_key_with_one_small_page(make_provider, wire) -> None:
    provider = make_provider()
    sent_alone(provider, MESSAGE)
    sent_alone(provider, MESSAGE)

    assert provider.verify() == "API key accepted; 2 message(s) on record"
    assert (wire.requests[-1].method, dict(wire.requests[-1].url.params)) == ("GET", {"page": "1", "page_size": "1"})


def test_send_sends_one_request_per_message_in_order(make_provider, wire, telefoon_sandbox) -> None:
    provider = make_provider()
    add_fault(telefoon_sandbox, endpoint="send", to="+31612345679", fault="error_code", code="21610")
    messages = [OutboundMessage(uuid.uuid4(), f"+3161234567{i}", "Hoi") for i in (8, 9, 7)]

    outcomes = provider.send(messages)

    assert [type(o) for o in outcomes] == [Accepted, Failure, Accepted]
    assert (outcomes[1].code, outcomes[1].status) == ("21610", Status.REJECTED)
    assert [json.loads(r.content)["to"] for r in wire.requests] == [m.recipient for m in messages]
    assert provider.max_recipients == 1
    assert len({provider.group_key(m) for m in messages}) == 3


# --- configuration, callbacks, vocabulary ---------------------------------------------------


def config(base_url: str = "https://api.telefoon.com/v1/sms", api_key: str = "k", **options: Any) -> dict[str, Any]:
    """A ``telefoon`` account table of the providers file."""
    return {"type": "telefoon", "base_url": base_url, "api_key": api_key, **options}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "default_sender: is required"),
        ({"default_sender": "ThisIsTooLong"}, "default_sender"),
        ({"default_sender": "0612345678"}, "default_sender"),
        ({"default_sender": "ACME", "sender_id": "ACME_BANK"}, "sender_id"),
        ({"default_sender": "ACME", "status_callback": "ftp://hooks.example.com"}, "status_callback"),
        ({"default_sender": "ACME", "status_callback": "/relative"}, "status_callback"),
        ({"default_sender": "ACME", "gdpr_consent_ref": 42}, "gdpr_consent_ref"),
    ],
)
def test_the_account_table_names_the_bad_option(options, field) -> None:
    with pytest.raises(ProvidersFileError, match=f"accounts.tf.{field}"):
        parse_account(config(**options), "tf")


def test_the_account_table_needs_the_api_key() -> None:
    bare = config(default_sender="ACME")
    del bare["api_key"]
    with pytest.raises(ProvidersFileError, match="accounts.tf.api_key: is required"):
        parse_account(bare, "tf")


@pytest.fixture
def provider() -> Iterator[TelefoonAdapter]:
    with httpx.Client() as client:
        yield TelefoonAdapter("tf", parse_account(config(default_sender="+31201234567")), client)


def test_parse_callback_reads_the_message_the_sandbox_serves(provider, make_provider, telefoon_sandbox, telefoon_clock) -> None:
    """The callback body is assumed to be the Message object getMessage answers."""
    live = make_provider()
    add_fault(telefoon_sandbox, endpoint="send", fault="final_status", status="DENIED", times=1)
    ids = [sent_alone(live, MESSAGE).provider_message_id for _ in range(2)]
    telefoon_clock.advance(1)
    bodies = [httpx.get(f"{telefoon_sandbox.url}{API_PATH}/messages/{i}", headers={"X-API-Key": KEY}).content for i in ids]

    reports = [provider.parse_callback(body, "application/json; charset=utf-8") for body in bodies]

    filtered = DeliveryReceipt(ids[0], "failed", Delivery.REJECTED, provider_error="30007: The message was filtered by the carrier")
    assert reports == [[filtered], [DeliveryReceipt(ids[1], "delivered", Delivery.DELIVERED)]]


def test_an_inbound_message_posted_to_the_callback_is_no_status_report(provider) -> None:
    body = {"id": "TI1", "status": "received", "direction": "inbound", "from": "+31612345678", "to": "+31201234567", "body": "Ja"}
    assert provider.parse_callback(json.dumps(body).encode(), "application/json") == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"id": "TF1", "status": "delivered"}', "application/json"),
        (b'{"id": "TF1", "status": "failed", "direction": "outbound", "from": "A", "to": "+31612345678", "error_code": "x"}', "application/json"),
        (b'{"id": "TF1"}', "application/x-www-form-urlencoded"),
    ],
)
def test_parse_callback_refuses_what_is_not_a_message(provider, body, content_type) -> None:
    with pytest.raises(ValueError):
        provider.parse_callback(body, content_type)


@pytest.mark.parametrize(
    ("word", "delivery"),
    [
        ("queued", Delivery.QUEUED),
        ("sending", Delivery.QUEUED),
        ("sent", Delivery.SENT),
        ("delivered", Delivery.DELIVERED),
        ("undelivered", Delivery.UNDELIVERABLE),
        ("failed", Delivery.UNDELIVERABLE),
        ("received", None),  # an inbound message's word: no delivery report
        ("vanished", None),  # a word the document does not list
    ],
)
def test_the_status_table(provider, word, delivery) -> None:
    assert provider.delivery(word) is delivery


def test_an_unknown_code_is_permanent_for_the_message_only(provider) -> None:
    error = provider.error(99999, "odd")
    assert (error.kind, error.account_wide, error.status) == (ErrorKind.PERMANENT, False, Status.UNDELIVERABLE)


# --- the sandbox on its own -----------------------------------------------------------------


@pytest.fixture
def app(clock: FakeClock) -> Any:
    return create_app(clock=clock)


def _client(app: Any, wire: Wire, key: str | None = KEY) -> TestClient:
    client = TestClient(app)
    client.event_hooks = wire.hooks
    if key is not None:
        client.headers["X-API-Key"] = key
    return client


@pytest.fixture
def api(app: Any, wire: Wire) -> TestClient:
    """A client whose requests and answers are validated against the document."""
    return _client(app, wire)


@pytest.fixture
def loose(app: Any, openapi: OpenAPI) -> TestClient:
    """For requests the document forbids on purpose; the answers are still validated."""
    return _client(app, Wire(openapi, check_requests=False))


def send(client: TestClient, **fields: Any) -> httpx.Response:
    return client.post(f"{API_PATH}/messages", json={"to": "+31612345678", "from": "ACME", "body": "Hoi", **fields})


OPERATIONS = [("POST", "/messages"), ("GET", "/messages"), ("GET", "/messages/TF100000"), ("DELETE", "/messages/TF100000")]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_needs_a_known_key(app, openapi, method, path) -> None:
    for key in (None, "wrong-key"):
        client = _client(app, Wire(openapi, check_requests=key is not None), key=key)
        response = client.request(
            method, f"{API_PATH}{path}", json={"to": "+31612345678", "from": "ACME", "body": "Hoi"} if method == "POST" else None
        )
        assert (response.status_code, response.json()["error_code"]) == (401, 20003)


def test_send_answers_201_with_the_message(api, clock) -> None:
    response = send(api, body="Grüß Gott", gdpr_consent_ref="c-1")
    assert response.status_code == 201
    assert response.json() == {
        "id": "TF100000",
        "status": "queued",
        "direction": "outbound",
        "from": "ACME",
        "to": "+31612345678",
        "body": "Grüß Gott",
        "num_segments": 1,
        "price": "0.0750",
        "price_unit": "EUR",
        "date_created": "2030-01-01T12:00:00Z",
    }


@pytest.mark.parametrize(
    ("text", "segments", "price"),
    [("a" * 160, 1, "0.0750"), ("a" * 161, 2, "0.1500"), ("я" * 70, 1, "0.0750"), ("я" * 71, 2, "0.1500"), ("€" * 80, 1, "0.0750")],
)
def test_segments_and_price_follow_the_encoding(api, text, segments, price) -> None:
    message = send(api, body=text).json()
    assert (message["num_segments"], message["price"]) == (segments, price)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], 20001),
        ({"to": 31612345678, "from": "ACME", "body": "Hoi"}, 20001),
        ({"from": "ACME", "body": "Hoi"}, 21604),
        ({"to": "0612345678", "from": "ACME", "body": "Hoi"}, 21211),
        ({"to": "+31612345678", "body": "Hoi"}, 21603),
        ({"to": "+31612345678", "from": "TooLongSender", "body": "Hoi"}, 21212),
        ({"to": "+31612345678", "from": "ACME"}, 21602),
        ({"to": "+31612345678", "from": "ACME", "body": "Hoi", "sender_id": "ACME_BANK"}, 21212),
        ({"to": "+31612345678", "from": "ACME", "body": "Hoi", "status_callback": "not a url"}, 21609),
    ],
)
def test_send_refusals_are_answered_and_recorded(loose, body, code) -> None:
    response = loose.post(f"{API_PATH}/messages", json=body)
    assert (response.status_code, response.json()["error_code"]) == (400, code)
    [submission] = loose.get("/_sandbox/submissions").json()["submissions"]
    assert (submission["accepted"], submission["code"], submission["message_id"], submission["parts"]) == (False, str(code), None, None)


def test_a_body_that_is_not_json_is_refused(loose) -> None:
    response = loose.post(f"{API_PATH}/messages", content=b"to=+31612345678", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error_code"]) == (400, 20001)


def test_status_and_date_sent_progress_with_the_clock(api, clock) -> None:
    message_id = send(api).json()["id"]
    seen = []
    for seconds in (0, 0.3, 0.3):
        clock.advance(seconds)
        message = api.get(f"{API_PATH}/messages/{message_id}").json()
        seen.append((message["status"], message.get("date_sent")))
    assert seen == [("queued", None), ("sent", "2030-01-01T12:00:00Z"), ("delivered", "2030-01-01T12:00:00Z")]


@pytest.mark.parametrize(
    "query",
    [{"page_size": "101"}, {"page_size": "0"}, {"page": "0"}, {"page": "first"}, {"direction": "sideways"}, {"status": "lost"}],
)
def test_list_parameters_are_checked(loose, query) -> None:
    response = loose.get(f"{API_PATH}/messages", params=query)
    assert (response.status_code, response.json()["error_code"]) == (400, 20001)
    assert list(query)[0] in response.json()["error_message"]


def test_list_pages_oldest_first_with_the_total(api) -> None:
    ids = [send(api).json()["id"] for _ in range(3)]
    pages = [api.get(f"{API_PATH}/messages", params={"page": page, "page_size": 2}).json() for page in (1, 2, 3)]
    assert [[m["id"] for m in page["messages"]] for page in pages] == [ids[:2], ids[2:], []]
    assert {page["total"] for page in pages} == {3}


def test_delete_erases_the_record(api) -> None:
    message_id = send(api).json()["id"]
    deleted = api.delete(f"{API_PATH}/messages/{message_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    for response in (api.get(f"{API_PATH}/messages/{message_id}"), api.delete(f"{API_PATH}/messages/{message_id}")):
        assert (response.status_code, response.json()["error_code"]) == (404, 20404)
    assert api.get(f"{API_PATH}/messages").json() == {"messages": [], "total": 0}


def test_reset_forgets_messages_but_ids_keep_counting(api) -> None:
    first = send(api).json()["id"]
    api.post("/_sandbox/reset")
    assert api.get(f"{API_PATH}/messages/{first}").status_code == 404
    assert send(api).json()["id"] == "TF100001"


def test_inbound_injection_needs_from_and_to(api) -> None:
    assert api.post("/telefoon/_sandbox/inbound", json={"body": "Hoi"}).status_code == 400


def fault(client: TestClient, **rule: Any) -> httpx.Response:
    return client.post("/_sandbox/faults", json={"provider": "telefoon", **rule})


def test_faults_name_the_operations(api) -> None:
    refused = fault(api, endpoint="send_message", fault="http_status", status=503)
    assert refused.status_code == 400
    assert "delete, get, list, send" in refused.json()["error"]
    fault(api, endpoint="get", fault="http_status", status=503)
    message_id = send(api).json()["id"]
    assert api.get(f"{API_PATH}/messages").status_code == 200
    assert api.get(f"{API_PATH}/messages/{message_id}").status_code == 503


def test_an_http_status_fault_is_a_bare_answer_and_is_recorded(api) -> None:
    fault(api, endpoint="send", fault="http_status", status=503, times=1)
    response = send(api)
    assert (response.status_code, response.headers["content-type"].split(";")[0], response.text) == (503, "text/plain", "503 Service Unavailable")
    [submission] = api.get("/_sandbox/submissions").json()["submissions"]
    assert (submission["accepted"], submission["code"]) == (False, "HTTP_503")
    assert send(api).status_code == 201


def test_an_error_code_fault_answers_telefoons_error(api) -> None:
    fault(api, endpoint="send", fault="error_code", code="21610", description="Recipient replied STOP", times=1)
    fault(api, endpoint="list", fault="error_code", code="BOGUS", times=1)
    assert send(api).json() == {"error_code": 21610, "error_message": "Recipient replied STOP"}
    listed = api.get(f"{API_PATH}/messages")
    assert (listed.status_code, listed.json()["error_code"]) == (400, 20001)
    assert "BOGUS" in listed.json()["error_message"]


def test_latency_holds_the_answer_after_the_work_is_done(api) -> None:
    fault(api, endpoint="send", fault="latency", ms=200, times=1)
    started = time.monotonic()
    response = send(api)
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.19


def test_session_loss_and_misplaced_final_status_are_never_taken(api, clock) -> None:
    fault(api, fault="session_loss", times=1)
    fault(api, endpoint="get", fault="final_status", status="DENIED", times=1)
    message_id = send(api).json()["id"]
    clock.advance(1)
    assert api.get(f"{API_PATH}/messages/{message_id}").json()["status"] == "delivered"
    assert len(api.get("/_sandbox/faults").json()["faults"]) == 2
