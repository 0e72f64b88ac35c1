"""The Telekom SK adapter against the sandbox over HTTP: wire format, sessions, error classes."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from conftest import failed_alone, parse_account, sent_alone

from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.priority import Priority
from sms_worker.providers.base import OutboundMessage
from sms_worker.providers.failures import ErrorKind
from sms_worker.providers.telekom_sk import TelekomSkAdapter


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wire():
    """Every request the adapter makes, as (function, JSON body)."""
    return []


@pytest.fixture
def make_provider(fake_sandbox, wire, adapter_client):
    def make(token: str = "sandbox-token", timeout: float = 5.0, monotonic=time.monotonic, **options) -> TelekomSkAdapter:
        def record(request: httpx.Request) -> None:
            wire.append((request.url.path.rsplit("/", 1)[-1], json.loads(request.content)))

        client = adapter_client(on_request=record, timeout=timeout)
        account = parse_account({"type": "telekom-sk", "base_url": f"{fake_sandbox.url}/telekom-sk", "token": token, **options})
        return TelekomSkAdapter("telekom-sk", account, client, monotonic=monotonic)

    return make


MESSAGE = OutboundMessage(
    uuid.uuid4(), "+421900123456", "Ahoj", sender="ACME", priority=Priority.HIGH, validity_minutes=30, unicode=False, flash=True
)


def test_send_speaks_the_documented_json(make_provider, wire, fake_sandbox):
    accepted = sent_alone(make_provider(), MESSAGE)

    assert [function for function, _ in wire] == ["auth", "send_message"]
    assert wire[0][1] == {"token": "sandbox-token"}
    body = wire[1][1]
    session_id = body.pop("session_id")
    assert body == {"to": "421900123456", "text": "Ahoj", "priority": 3, "from": "ACME", "validity": 30, "unicode": False, "type": "flash"}
    assert len(session_id) == 36
    [submission] = fake_sandbox.submissions()
    assert accepted.provider_message_id == str(submission["message_id"])
    assert (accepted.provider_status, accepted.delivery, accepted.segments) == ("QUEUED", Delivery.QUEUED, 1)


def test_the_session_is_reused_pinged_when_idle_and_renewed_when_lost(make_provider, wire, sandbox_clock):
    monotonic = Monotonic()
    provider = make_provider(monotonic=monotonic)
    sent_alone(provider, MESSAGE)
    sent_alone(provider, MESSAGE)
    assert [f for f, _ in wire] == ["auth", "send_message", "send_message"]

    monotonic.now += 11 * 60
    sandbox_clock.advance(11 * 60)
    sent_alone(provider, MESSAGE)
    assert [f for f, _ in wire][3:] == ["ping", "send_message"]

    sandbox_clock.advance(16 * 60)
    monotonic.now += 5 * 60
    sent_alone(provider, MESSAGE)
    assert [f for f, _ in wire][5:] == ["send_message", "auth", "send_message"]


def test_token_per_request_mode_keeps_no_session(make_provider, wire):
    sent_alone(make_provider(use_session=False), MESSAGE)
    assert [f for f, _ in wire] == ["send_message"]
    assert wire[0][1]["token"] == "sandbox-token"


def test_check_maps_the_status_and_reads_the_delivery_time(make_provider, sandbox_clock):
    provider = make_provider()
    accepted = sent_alone(provider, MESSAGE)
    assert provider.check(accepted.provider_message_id).delivery is Delivery.QUEUED
    sandbox_clock.advance(5)

    report = provider.check(accepted.provider_message_id)

    assert (report.delivery, report.provider_status) == (Delivery.DELIVERED, "DELIVERED")
    assert abs((report.delivered_at - sandbox_clock.now()).total_seconds()) < 10


@pytest.mark.parametrize(
    ("fault", "kind", "code", "account_wide", "status"),
    [
        ({"fault": "http_status", "status": 503}, ErrorKind.TRANSIENT, "HTTP_503", False, None),
        ({"fault": "http_status", "status": 429}, ErrorKind.TRANSIENT, "HTTP_429", False, None),
        ({"fault": "error_code", "code": "ERROR"}, ErrorKind.TRANSIENT, "ERROR", False, None),
        ({"fault": "error_code", "code": "DENIED"}, ErrorKind.PERMANENT, "DENIED", False, Status.REJECTED),
        ({"fault": "error_code", "code": "UNDELIVERABLE"}, ErrorKind.PERMANENT, "UNDELIVERABLE", False, Status.UNDELIVERABLE),
        ({"fault": "error_code", "code": "IP_NOT_ALLOWED"}, ErrorKind.PERMANENT, "IP_NOT_ALLOWED", True, Status.UNDELIVERABLE),
        ({"fault": "timeout", "seconds": 1.0}, ErrorKind.AMBIGUOUS, "TIMEOUT", False, None),
    ],
)
def test_documented_errors_are_classified(make_provider, fake_sandbox, fault, kind, code, account_wide, status):
    provider = make_provider(timeout=0.3)
    fake_sandbox.add_fault(endpoint="send_message", **fault)

    caught = failed_alone(provider, MESSAGE)

    assert (caught.kind, caught.code, caught.account_wide) == (kind, code, account_wide)
    if status is not None:
        assert caught.status is status


def test_a_bad_token_is_an_account_wide_permanent_fault(make_provider):
    caught = failed_alone(make_provider(token="wrong"), MESSAGE)
    assert (caught.kind, caught.code, caught.account_wide) == (ErrorKind.PERMANENT, "INVALID_TOKEN", True)


def test_a_session_lost_twice_in_a_row_is_transient(make_provider, fake_sandbox):
    provider = make_provider()
    fake_sandbox.add_fault(endpoint="send_message", fault="session_loss", times=2)
    caught = failed_alone(provider, MESSAGE)
    assert (caught.kind, caught.code) == (ErrorKind.TRANSIENT, "SESSION_NOT_FOUND")
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED


@pytest.mark.parametrize(
    ("word", "delivery"),
    [
        *((word, Delivery.QUEUED) for word in ("UNSENT", "SCHEDULED", "QUEUED", "IN_GROUP", "PROCESSING", "ERROR")),
        ("SENDING", Delivery.SENT),
        ("SENT", Delivery.SENT),
        ("DELIVERED", Delivery.DELIVERED),
        ("READ", Delivery.DELIVERED),
        ("EXPIRED", Delivery.EXPIRED),
        ("DELETED", Delivery.UNDELIVERABLE),
        ("UNDELIVERABLE", Delivery.UNDELIVERABLE),
        ("DENIED", Delivery.REJECTED),
        ("UNKNOWN", Delivery.UNDETERMINED),
        ("TELEPORTED", None),  # a word the document does not name: recorded, maps to nothing
    ],
)
def test_status_words_map_to_deliveries(word, delivery):
    assert TelekomSkAdapter.delivery(word) is delivery


def test_a_message_without_options_sends_only_what_the_api_needs(make_provider, wire, fake_sandbox):
    sent_alone(make_provider(), OutboundMessage(uuid.uuid4(), "+421900123456", "Ahoj"))

    body = wire[-1][1]
    body.pop("session_id")
    assert body == {"to": "421900123456", "text": "Ahoj", "priority": 2}
    [submission] = fake_sandbox.submissions()
    assert submission["accepted"] is True


def test_open_logs_in_before_the_first_message(make_provider, wire):
    provider = make_provider()
    provider.open()
    sent_alone(provider, MESSAGE)
    assert [f for f, _ in wire] == ["auth", "send_message"]
