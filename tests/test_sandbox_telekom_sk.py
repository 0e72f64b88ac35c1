"""The Telekom SK sandbox behaves as the provider's API v1 document describes, plus its faults.

Time is a FakeClock throughout, so session expiry and status progression are exact and no test
sleeps except the two that measure a held answer.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from sms_worker.clock import FakeClock
from sms_worker.sandbox import SandboxSettings, create_app

BASE = "/telekom-sk/json"
TOKEN = "sandbox-token"
TO = "421900000001"
OK_RESULT = {"status": "success", "description": "", "code": "OK"}
SESSION_LOST = {"result": {"status": "error", "description": "Session was not found or has expired", "code": "SESSION_NOT_FOUND"}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # 2030-01-01 12:00:00 UTC, 13:00 in Bratislava


@pytest.fixture
def client(clock: FakeClock) -> TestClient:
    return TestClient(create_app(clock=clock))


def call(client: TestClient, function: str, **params: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/{function}", json=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient) -> str:
    return str(call(client, "auth", token=TOKEN)["session_id"])


def send(client: TestClient, **params: Any) -> dict[str, Any]:
    return call(client, "send_message", **{"token": TOKEN, "to": TO, "text": "Hello", **params})


def status_of(client: TestClient, message_id: Any) -> dict[str, Any]:
    return call(client, "check_message", token=TOKEN, message_id=message_id)


def add_fault(client: TestClient, **rule: Any) -> dict[str, Any]:
    response = client.post("/_sandbox/faults", json={"provider": "telekom-sk", **rule})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def submissions(client: TestClient, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/_sandbox/submissions", params=query)
    assert response.status_code == 200
    records: list[dict[str, Any]] = response.json()["submissions"]
    return records


def error(code: str, description: str) -> dict[str, Any]:
    return {"result": {"status": "error", "description": description, "code": code}}


# --- auth, sessions, IP allow-list -------------------------------------------------------


def test_auth_returns_a_uuid4_session_id(client: TestClient) -> None:
    body = call(client, "auth", token=TOKEN)
    assert body.keys() == {"result", "session_id"}
    assert body["result"] == OK_RESULT
    assert uuid.UUID(body["session_id"]).version == 4


def test_auth_by_get_with_query_parameters(client: TestClient) -> None:
    body = client.get(f"{BASE}/auth", params={"token": TOKEN}).json()
    assert body["result"] == OK_RESULT


def test_auth_rejects_an_unknown_token(client: TestClient) -> None:
    assert call(client, "auth", token="nope") == error("INVALID_TOKEN", "The API token is not valid")


def test_auth_without_token_names_the_parameter(client: TestClient) -> None:
    assert call(client, "auth") == error("MISSING_PARAMETER", "Parameter 'token' is required")


def test_configured_tokens_are_accepted(clock: FakeClock) -> None:
    client = TestClient(create_app(clock, SandboxSettings(telekom_sk_tokens=frozenset({"a", "b"}))))
    assert call(client, "auth", token="b")["result"] == OK_RESULT
    assert call(client, "auth", token=TOKEN)["result"]["code"] == "INVALID_TOKEN"


def test_ip_not_on_the_allow_list_is_refused_everywhere(clock: FakeClock) -> None:
    client = TestClient(create_app(clock, SandboxSettings(telekom_sk_allowed_ips=frozenset({"127.0.0.1"}))))
    refused = error("IP_NOT_ALLOWED", "Access from IP address testclient is not allowed")
    assert call(client, "auth", token=TOKEN) == refused
    assert send(client) == refused
    assert call(client, "ping", token=TOKEN) == refused


def test_session_expires_after_15_minutes_of_inactivity(client: TestClient, clock: FakeClock) -> None:
    session_id = login(client)
    clock.advance(899)
    assert call(client, "ping", session_id=session_id) == {"result": OK_RESULT}
    clock.advance(899)  # 1798 s after login, but only 899 s after the ping
    assert call(client, "ping", session_id=session_id) == {"result": OK_RESULT}
    clock.advance(900)
    assert call(client, "ping", session_id=session_id) == SESSION_LOST
    clock.advance(-900)
    assert call(client, "ping", session_id=session_id) == SESSION_LOST  # forgotten, not just stale


def test_every_successful_use_refreshes_the_session(client: TestClient, clock: FakeClock) -> None:
    session_id = login(client)
    for _ in range(3):
        clock.advance(600)
        assert send(client, token=None, session_id=session_id)["result"] == OK_RESULT
    clock.advance(600)
    assert call(client, "check_message", session_id=session_id, message_id=100000)["result"] == OK_RESULT


def test_unknown_session_is_not_found(client: TestClient) -> None:
    assert call(client, "ping", session_id=str(uuid.uuid4())) == SESSION_LOST
    assert send(client, token=None, session_id="not-a-session") == SESSION_LOST


def test_token_per_request_mode_needs_no_auth(client: TestClient) -> None:
    assert call(client, "ping", token=TOKEN) == {"result": OK_RESULT}
    message_id = send(client)["messages"][0]["message_id"]
    assert status_of(client, message_id)["code"] == "QUEUED"
    assert send(client, token="wrong") == error("INVALID_TOKEN", "The API token is not valid")
    assert send(client, token=None) == error("MISSING_PARAMETER", "Parameter 'session_id' or 'token' is required")


# --- send_message ------------------------------------------------------------------------


def test_send_message_answers_exactly_as_the_document(client: TestClient) -> None:
    session_id = login(client)
    body = call(client, "send_message", to=TO, session_id=session_id, text="Text", unicode=False)
    assert body == {
        "result": {"status": "success", "description": "", "code": "OK"},
        "message_count": 1,
        "messages": [{"status": "success", "code": "OK", "description": "", "message_id": 100000, "parts": 1}],
    }
    assert send(client)["messages"][0]["message_id"] == 100001


def test_send_message_by_get_reads_string_values(client: TestClient) -> None:
    params = {"token": TOKEN, "to": "+421900000001", "text": "Hi", "priority": "3", "unicode": "false"}
    body = client.get(f"{BASE}/send_message", params=params).json()
    assert body["result"] == OK_RESULT
    assert submissions(client)[0]["params"] == {"priority": "3", "unicode": "false"}


@pytest.mark.parametrize(
    "params",
    [
        {"to": "0900000001"},
        {"to": 421900000001},
        {"from": "Shop"},
        {"priority": 1, "validity": 1, "type": "flash", "groupId": "7", "callback": "0"},
        {"priority": "3", "validity": "1440", "delivery_time": "2030-01-01 12:00:00", "unicode": 1},
    ],
)
def test_send_message_accepts_valid_parameters(client: TestClient, params: dict[str, Any]) -> None:
    assert send(client, **params)["result"] == OK_RESULT


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"to": None}, "MISSING_PARAMETER", "to"),
        ({"to": "abc"}, "INVALID_PARAMETER", "to"),
        ({"to": "12345"}, "INVALID_PARAMETER", "to"),
        ({"to": "4219000000011111"}, "INVALID_PARAMETER", "to"),
        ({"text": None}, "MISSING_PARAMETER", "text"),
        ({"text": ""}, "INVALID_PARAMETER", "text"),
        ({"text": ["a"]}, "INVALID_PARAMETER", "text"),
        ({"from": {"name": "x"}}, "INVALID_PARAMETER", "from"),
        ({"priority": 0}, "INVALID_PARAMETER", "priority"),
        ({"priority": 4}, "INVALID_PARAMETER", "priority"),
        ({"priority": "high"}, "INVALID_PARAMETER", "priority"),
        ({"priority": True}, "INVALID_PARAMETER", "priority"),
        ({"priority": 2.5}, "INVALID_PARAMETER", "priority"),
        ({"validity": 0}, "INVALID_PARAMETER", "validity"),
        ({"validity": 1441}, "INVALID_PARAMETER", "validity"),
        ({"delivery_time": "2030-01-01T12:00:00"}, "INVALID_PARAMETER", "delivery_time"),
        ({"delivery_time": "2030-02-30 12:00:00"}, "INVALID_PARAMETER", "delivery_time"),
        ({"type": "sms"}, "INVALID_PARAMETER", "type"),
        ({"groupId": "abc"}, "INVALID_PARAMETER", "groupId"),
    ],
)
def test_send_message_validation_names_the_field(client: TestClient, params: dict[str, Any], code: str, field: str) -> None:
    body = send(client, **params)
    assert body.keys() == {"result"}
    assert body["result"]["status"] == "error"
    assert body["result"]["code"] == code
    assert f"'{field}'" in body["result"]["description"]
    [record] = submissions(client)
    assert (record["accepted"], record["code"], record["message_id"], record["parts"]) == (False, code, None, None)


def test_validation_error_describes_the_reason(client: TestClient) -> None:
    assert send(client, priority=9)["result"]["description"] == "Parameter 'priority' must be an integer from 1 to 3"
    assert send(client, to=None)["result"]["description"] == "Parameter 'to' is required"


@pytest.mark.parametrize(
    ("text", "unicode", "parts"),
    [
        ("a" * 160, None, 1),
        ("a" * 161, None, 2),
        ("a" * 306, None, 2),
        ("a" * 307, None, 3),
        ("€" * 80, None, 1),  # extension characters take two septets
        ("€" * 81, None, 2),
        ("č" * 70, None, 1),  # outside GSM-7: the whole text is UCS-2
        ("č" * 71, None, 2),
        ("č" * 135, None, 3),
        ("č" * 71, False, 1),  # diacritics stripped: back to GSM-7
        ("č" * 161, "0", 2),
        ("a" * 70, True, 1),  # unicode forced: UCS-2 limits even for plain text
        ("a" * 71, True, 2),
        ("a" * 134, "yes", 2),
        ("a" * 135, 1, 3),
    ],
)
def test_parts_follow_encoding_and_unicode_flag(client: TestClient, text: str, unicode: Any, parts: int) -> None:
    params = {} if unicode is None else {"unicode": unicode}
    assert send(client, text=text, **params)["messages"][0]["parts"] == parts
    assert submissions(client)[0]["parts"] == parts


# --- check_message and status progression ------------------------------------------------


def test_status_progresses_queued_sent_delivered_with_the_clock(client: TestClient, clock: FakeClock) -> None:
    message_id = send(client)["messages"][0]["message_id"]
    assert status_of(client, message_id) == {
        "result": OK_RESULT,
        "message_id": str(message_id),
        "status": "Queued",
        "code": "QUEUED",
        "deliveryDateTime": "",
    }
    clock.advance(0.3)
    assert (status_of(client, message_id)["code"], status_of(client, message_id)["status"]) == ("SENT", "Sent")
    clock.advance(0.3)
    body = status_of(client, message_id)
    assert (body["code"], body["status"]) == ("DELIVERED", "Delivered")
    assert body["deliveryDateTime"] == "2030-01-01 13:00:00"  # Europe/Bratislava wall clock


def test_delivery_time_in_the_future_is_scheduled_until_then(client: TestClient, clock: FakeClock) -> None:
    message_id = send(client, delivery_time="2030-01-01 14:00:00")["messages"][0]["message_id"]  # 13:00 UTC
    assert status_of(client, message_id)["code"] == "SCHEDULED"
    assert status_of(client, message_id)["status"] == "Scheduled"
    clock.advance(3599.9)
    assert status_of(client, message_id)["code"] == "SCHEDULED"
    clock.advance(0.1)
    assert status_of(client, message_id)["code"] == "QUEUED"
    clock.advance(0.6)
    body = status_of(client, message_id)
    assert (body["code"], body["deliveryDateTime"]) == ("DELIVERED", "2030-01-01 14:00:00")


def test_delivery_time_in_the_past_means_now(client: TestClient) -> None:
    message_id = send(client, delivery_time="2029-12-31 23:00:00")["messages"][0]["message_id"]
    assert status_of(client, message_id)["code"] == "QUEUED"


def test_validity_ending_before_sending_expires_the_message(clock: FakeClock) -> None:
    client = TestClient(create_app(clock, SandboxSettings(sent_after=120, delivered_after=180)))
    short = send(client, validity=1)["messages"][0]["message_id"]
    long = send(client, validity=3)["messages"][0]["message_id"]
    clock.advance(59)
    assert [status_of(client, m)["code"] for m in (short, long)] == ["QUEUED", "QUEUED"]
    clock.advance(1)
    assert [status_of(client, m)["code"] for m in (short, long)] == ["EXPIRED", "QUEUED"]
    clock.advance(60)
    assert [status_of(client, m)["code"] for m in (short, long)] == ["EXPIRED", "SENT"]
    clock.advance(60)
    assert [status_of(client, m)["code"] for m in (short, long)] == ["EXPIRED", "DELIVERED"]
    assert status_of(client, short)["deliveryDateTime"] == ""


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        (999, error("MESSAGE_NOT_FOUND", "Message 999 was not found")),
        (None, error("MISSING_PARAMETER", "Parameter 'message_id' is required")),
        ("abc", error("INVALID_PARAMETER", "Parameter 'message_id' must be an integer")),
    ],
)
def test_check_message_errors(client: TestClient, message_id: Any, expected: dict[str, Any]) -> None:
    assert status_of(client, message_id) == expected


def test_check_message_accepts_a_string_id(client: TestClient) -> None:
    message_id = send(client)["messages"][0]["message_id"]
    assert status_of(client, str(message_id))["message_id"] == str(message_id)


def test_body_that_is_not_a_json_object_is_refused_and_recorded(client: TestClient) -> None:
    response = client.post(f"{BASE}/send_message", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.json() == error("INVALID_REQUEST", "Request body must be a JSON object")
    response = client.post(f"{BASE}/send_message", content=b"{nope")
    assert response.json()["result"]["code"] == "INVALID_REQUEST"
    assert [(r["accepted"], r["code"]) for r in submissions(client)] == [(False, "INVALID_REQUEST")] * 2


# --- faults ------------------------------------------------------------------------------


def test_latency_holds_the_answer_then_answers_normally(client: TestClient) -> None:
    add_fault(client, endpoint="send_message", fault="latency", ms=50)
    started = time.monotonic()
    body = send(client)
    assert time.monotonic() - started >= 0.05
    assert body["result"] == OK_RESULT
    assert submissions(client)[0]["accepted"] is True


def test_timeout_holds_the_answer_but_the_message_is_accepted(client: TestClient) -> None:
    add_fault(client, endpoint="send_message", fault="timeout", seconds=0.05, times=1)
    started = time.monotonic()
    message_id = send(client)["messages"][0]["message_id"]
    assert time.monotonic() - started >= 0.05
    assert status_of(client, message_id)["code"] == "QUEUED"
    assert [(r["accepted"], r["code"]) for r in submissions(client)] == [(True, "OK")]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_http_status_answers_a_bare_http_error(client: TestClient, status: int) -> None:
    add_fault(client, endpoint="send_message", fault="http_status", status=status, times=1)
    response = client.post(f"{BASE}/send_message", json={"token": TOKEN, "to": TO, "text": "Hi"})
    assert response.status_code == status
    assert response.text.startswith(str(status))
    assert send(client)["result"] == OK_RESULT  # times=1: consumed
    records = submissions(client)
    assert [(r["accepted"], r["code"], r["message_id"]) for r in records] == [
        (False, f"HTTP_{status}", None),
        (True, "OK", 100000),
    ]


def test_session_loss_drops_every_session(client: TestClient) -> None:
    session_id = login(client)
    add_fault(client, endpoint="send_message", fault="session_loss", times=1)
    assert send(client, token=None, session_id=session_id) == SESSION_LOST
    assert call(client, "ping", session_id=session_id) == SESSION_LOST
    assert submissions(client)[0]["code"] == "SESSION_NOT_FOUND"
    fresh = login(client)
    assert send(client, token=None, session_id=fresh)["result"] == OK_RESULT


def test_error_code_answers_a_top_level_error(client: TestClient) -> None:
    add_fault(client, endpoint="send_message", fault="error_code", code="ERROR", times=1)
    body = send(client)
    assert body["result"]["status"] == "error"
    assert body["result"]["code"] == "ERROR"
    assert "retry delivery up to 5 times" in body["result"]["description"]
    assert [(r["accepted"], r["code"]) for r in submissions(client)] == [(False, "ERROR")]


def test_error_code_ip_not_allowed_names_the_caller(client: TestClient) -> None:
    add_fault(client, fault="error_code", code="IP_NOT_ALLOWED")
    expected = error("IP_NOT_ALLOWED", "Access from IP address testclient is not allowed")
    assert call(client, "auth", token=TOKEN) == expected
    assert send(client) == expected


def test_error_code_with_own_description(client: TestClient) -> None:
    add_fault(client, endpoint="auth", fault="error_code", code="ERROR", description="Try later")
    assert call(client, "auth", token=TOKEN) == error("ERROR", "Try later")


@pytest.mark.parametrize("code", ["DENIED", "UNDELIVERABLE"])
def test_refusal_codes_are_reported_per_message(client: TestClient, code: str) -> None:
    add_fault(client, endpoint="send_message", to=TO, fault="error_code", code=code.lower(), times=1)
    body = send(client)
    assert body["result"] == OK_RESULT
    assert body["message_count"] == 1
    [entry] = body["messages"]
    assert (entry["status"], entry["code"], entry["message_id"], entry["parts"]) == ("error", code, None, 1)
    assert entry["description"]
    [record] = submissions(client)
    assert (record["accepted"], record["code"], record["message_id"], record["parts"]) == (False, code, None, 1)


def test_final_status_replaces_delivered(client: TestClient, clock: FakeClock) -> None:
    add_fault(client, fault="final_status", status="UNDELIVERABLE", times=1)
    login(client)  # an auth call does not use up a final_status rule
    faulted = send(client)["messages"][0]["message_id"]
    normal = send(client)["messages"][0]["message_id"]
    clock.advance(0.3)
    assert status_of(client, faulted)["code"] == "SENT"
    clock.advance(0.3)
    body = status_of(client, faulted)
    assert (body["code"], body["status"], body["deliveryDateTime"]) == ("UNDELIVERABLE", "Undeliverable", "")
    assert status_of(client, normal)["code"] == "DELIVERED"
    assert all(r["accepted"] for r in submissions(client))


def test_rule_matches_recipient_with_or_without_plus(client: TestClient) -> None:
    add_fault(client, to="+421900000001", fault="error_code", code="ERROR")
    assert send(client, to="421900000002")["result"] == OK_RESULT
    assert send(client, to="421900000001")["result"]["code"] == "ERROR"
    assert send(client, to="+421900000001")["result"]["code"] == "ERROR"


def test_times_is_consumed_per_matching_request(client: TestClient) -> None:
    rule = add_fault(client, endpoint="send_message", fault="error_code", code="ERROR", times=2)
    assert call(client, "ping", token=TOKEN)["result"] == OK_RESULT  # other endpoint: not matched
    assert client.get("/_sandbox/faults").json()["faults"] == [rule]
    assert [send(client)["result"]["code"] for _ in range(3)] == ["ERROR", "ERROR", "OK"]
    assert client.get("/_sandbox/faults").json()["faults"] == []


def test_unlimited_rule_stays_and_first_match_wins(client: TestClient) -> None:
    add_fault(client, fault="error_code", code="ERROR", times=None, probability=0)  # never fires
    add_fault(client, fault="error_code", code="DENIED", endpoint="auth")
    add_fault(client, fault="http_status", status=503)
    assert call(client, "auth", token=TOKEN)["result"]["code"] == "DENIED"
    for _ in range(3):
        assert client.post(f"{BASE}/ping", json={"token": TOKEN}).status_code == 503
    assert len(client.get("/_sandbox/faults").json()["faults"]) == 3


def test_fault_rules_are_listed_with_ids_and_cleared(client: TestClient) -> None:
    first = add_fault(client, fault="latency", ms=1)
    assert first == {
        "id": 1,
        "provider": "telekom-sk",
        "endpoint": None,
        "to": None,
        "fault": "latency",
        "times": None,
        "probability": 1,
        "ms": 1,
    }
    second = add_fault(client, fault="session_loss", endpoint="ping", times=3, probability=0.5)
    assert second["id"] == 2
    assert client.get("/_sandbox/faults").json() == {"faults": [first, second]}
    assert client.delete("/_sandbox/faults").status_code == 200
    assert client.get("/_sandbox/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "rule",
    [
        {"fault": "explode"},
        {"provider": "nope", "fault": "session_loss"},
        {"endpoint": "send_sms", "fault": "session_loss"},
        {"fault": "latency"},
        {"fault": "latency", "ms": -1},
        {"fault": "http_status", "status": 200},
        {"fault": "final_status", "status": "GONE"},
        {"fault": "error_code", "code": ""},
        {"fault": "session_loss", "times": 0},
        {"fault": "session_loss", "probability": 2},
        {"fault": "session_loss", "time": 3},
    ],
)
def test_invalid_fault_rules_are_refused(client: TestClient, rule: dict[str, Any]) -> None:
    response = client.post("/_sandbox/faults", json={"provider": "telekom-sk", **rule})
    assert response.status_code == 400
    assert response.json()["error"]
    assert client.post("/_sandbox/faults", content=b"{").status_code == 400


# --- submissions and reset ---------------------------------------------------------------


def test_submissions_are_logged_in_order_with_filters(client: TestClient, clock: FakeClock) -> None:
    session_id = login(client)
    before = time.time()
    send(client, token=None, session_id=session_id, to="421900000001", text="one", **{"from": "Shop"})
    send(client, to="421900000002", text="two", priority=3)
    send(client, to="bad", text="three")
    records = submissions(client)
    assert [(r["seq"], r["to"], r["accepted"], r["code"]) for r in records] == [
        (1, "421900000001", True, "OK"),
        (2, "421900000002", True, "OK"),
        (3, "bad", False, "INVALID_PARAMETER"),
    ]
    first = records[0]
    assert first == {
        "seq": 1,
        "provider": "telekom-sk",
        "endpoint": "send_message",
        "to": "421900000001",
        "from": "Shop",
        "text": "one",
        "params": {},
        "accepted": True,
        "code": "OK",
        "message_id": 100000,
        "parts": 1,
        "received_at": "2030-01-01T12:00:00.000+00:00",
        "received_ts": first["received_ts"],
    }
    assert datetime.fromisoformat(first["received_at"]) == clock.now()
    assert before <= first["received_ts"] <= time.time()
    assert records[1]["from"] is None and records[1]["params"] == {"priority": 3}
    assert [r["seq"] for r in submissions(client, since=1)] == [2, 3]
    assert submissions(client, since=3) == []
    assert len(submissions(client, provider="telekom-sk")) == 3
    assert submissions(client, provider="dexatel") == []
    assert client.get("/_sandbox/submissions", params={"since": "x"}).status_code == 400


def test_reset_clears_submissions_sessions_messages_and_faults(client: TestClient) -> None:
    session_id = login(client)
    message_id = send(client)["messages"][0]["message_id"]
    add_fault(client, endpoint="auth", fault="error_code", code="ERROR")
    assert client.post("/_sandbox/reset").status_code == 200
    assert submissions(client) == []
    assert client.get("/_sandbox/faults").json() == {"faults": []}
    assert call(client, "ping", session_id=session_id) == SESSION_LOST
    assert status_of(client, message_id)["result"]["code"] == "MESSAGE_NOT_FOUND"
    assert login(client)  # the fault is gone
    # Numbers are never reused, so a poller's ``since`` and an old message id stay unambiguous.
    assert send(client)["messages"][0]["message_id"] == message_id + 1
    assert submissions(client)[0]["seq"] == 2
