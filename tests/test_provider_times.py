"""Issue 9, kind 7: one time-zone rule per provider, on every path. A provider time written
without a zone is read in the provider's declared zone (``Adapter.zone``) whether it was polled
or posted in a callback, and the host's own zone (``TZ``) never changes the answer."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import parse_account, sent_alone

from sms_worker.providers.base import OutboundMessage
from sms_worker.providers.dexatel import DexatelAdapter
from sms_worker.providers.dt_a2p import DtA2pAdapter
from sms_worker.providers.session_key import SessionKeyAdapter
from sms_worker.providers.telekom_sk import TelekomSkAdapter

ISSUE_MOMENT = datetime(2026, 11, 30, 12, 30, 22, tzinfo=UTC)
"""13:30:22 in Bratislava (CET, UTC+1) on the issue's date."""


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Kolkata"])
def host_zone(request, monkeypatch):
    """The host's local zone, as the TZ variable sets it for this process."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def callback(adapter, document: dict) -> list:
    return adapter.parse_callback(json.dumps(document).encode(), "application/json")


def telekom_sk(base_url: str, client: httpx.Client) -> TelekomSkAdapter:
    return TelekomSkAdapter("telekom-sk", parse_account({"type": "telekom-sk", "base_url": base_url, "token": "sandbox-token"}), client)


def test_the_issue_input_a_zoneless_telekom_sk_callback_time_is_slovak_time(host_zone):
    adapter = telekom_sk("http://unused", httpx.Client())

    [receipt] = callback(adapter, {"messageId": "100001", "delivery": {"status": "DELIVERED"}, "timestamp": "2026-11-30T13:30:22"})

    assert receipt.delivered_at == ISSUE_MOMENT


def test_telekom_sk_polled_and_called_back_times_agree_whatever_the_host_zone(host_zone, fake_sandbox, sandbox_clock, adapter_client):
    sent_at = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # summer time in Bratislava: UTC+2
    sandbox_clock.set(sent_at)
    answers: list[dict] = []

    def keep_check_answers(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/check_message"):
            response.read()
            answers.append(response.json())

    adapter = telekom_sk(f"{fake_sandbox.url}/telekom-sk", adapter_client(on_response=keep_check_answers))
    accepted = sent_alone(adapter, OutboundMessage(uuid.uuid4(), "+421900123456", "Ahoj"))
    sandbox_clock.advance(5)

    polled = adapter.check(accepted.provider_message_id)
    wall_clock = answers[-1]["deliveryDateTime"]  # "2026-07-01 11:00:0x", no zone
    [called_back] = callback(
        adapter, {"messageId": accepted.provider_message_id, "delivery": {"status": "DELIVERED"}, "timestamp": wall_clock.replace(" ", "T")}
    )

    assert polled.delivered_at is not None and timedelta(0) <= polled.delivered_at - sent_at <= timedelta(seconds=10)
    assert called_back.delivered_at == polled.delivered_at


def test_session_key_and_dt_a2p_read_zoneless_callback_times_in_their_declared_zones(host_zone):
    session_key = SessionKeyAdapter(
        "session-key", parse_account({"type": "session-key", "base_url": "http://unused", "username": "u", "password": "p"}), httpx.Client()
    )
    dt_a2p = DtA2pAdapter(
        "dt-a2p", parse_account({"type": "dt-a2p", "base_url": "http://unused", "api_key": "k", "default_sender": "ACME"}), httpx.Client()
    )

    [rome] = callback(
        session_key, {"order_id": "O1", "recipients": [{"destination": "+39333", "status": "DLVRD", "delivery_date": "20261130133022"}]}
    )
    [utc] = callback(dt_a2p, {"id": "D1", "status": "delivered", "delivered_at": "2026-11-30T12:30:22"})

    assert rome.delivered_at == ISSUE_MOMENT  # Europe/Rome, UTC+1 in November
    assert utc.delivered_at == ISSUE_MOMENT


def test_dexatel_never_guesses_a_zone_on_either_path(host_zone):
    adapter = DexatelAdapter(
        "dexatel", parse_account({"type": "dexatel", "base_url": "http://unused", "api_key": "k", "default_sender": "ACME"}), httpx.Client()
    )
    with pytest.raises(ValueError, match="not RFC 3339 with an offset"):
        callback(adapter, {"message_id": "m1", "status": "delivered", "timestamp": "2026-11-30T13:30:22"})

    [receipt] = callback(adapter, {"message_id": "m1", "status": "delivered", "timestamp": "2026-11-30T13:30:22+01:00"})
    assert receipt.delivered_at == ISSUE_MOMENT
