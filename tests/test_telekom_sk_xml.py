"""Telekom SK's XML transport: the adapter and the sandbox speak the document's XML over HTTP."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest
from conftest import failed_alone, parse_account, sent_alone

from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.priority import Priority
from sms_worker.providers.base import OutboundMessage
from sms_worker.providers.failures import ErrorKind, ProviderError
from sms_worker.providers.telekom_sk import NumberCheck, TelekomSkAdapter

MESSAGE = OutboundMessage(uuid.uuid4(), "+421900123456", "Ahoj", sender="ACME", priority=Priority.HIGH, validity_minutes=30, unicode=False)


def account(base_url: str, transport: str):
    return parse_account({"type": "telekom-sk", "base_url": base_url, "token": "sandbox-token", "transport": transport})


@pytest.fixture
def xml_sandbox(fake_sandbox):
    return fake_sandbox


@pytest.fixture
def wire():
    return []


@pytest.fixture
def provider(xml_sandbox, wire):
    def record(request: httpx.Request) -> None:
        wire.append((request.url.path, request.headers["content-type"], request.content))

    client = httpx.Client(timeout=5, event_hooks={"request": [record]})
    yield TelekomSkAdapter("telekom-sk", account(f"{xml_sandbox.url}/telekom-sk", "xml"), client)
    client.close()


def test_send_posts_the_documented_request_document(provider, wire, xml_sandbox):
    accepted = sent_alone(provider, MESSAGE)

    paths = [path for path, _, _ in wire]
    assert paths == ["/telekom-sk/xml/auth", "/telekom-sk/xml/send_message"]
    assert all(kind == "application/xml" for _, kind, _ in wire)
    auth = ET.fromstring(wire[0][2])
    assert (auth.tag, auth.findtext("token")) == ("request", "sandbox-token")
    send = ET.fromstring(wire[1][2])
    assert {child.tag: child.text for child in send} == {
        "to": "421900123456",
        "text": "Ahoj",
        "priority": "3",
        "from": "ACME",
        "validity": "30",
        "unicode": "false",
        "session_id": send.findtext("session_id"),
    }
    [submission] = xml_sandbox.submissions()
    assert accepted.provider_message_id == str(submission["message_id"])
    assert (accepted.provider_status, accepted.delivery) == ("QUEUED", Delivery.QUEUED)


def test_the_sandbox_answers_in_the_documented_xml(xml_sandbox):
    auth = httpx.post(f"{xml_sandbox.url}/telekom-sk/xml/auth", content=b"<request><token>sandbox-token</token></request>")
    assert auth.headers["content-type"].startswith("application/xml")
    session_id = ET.fromstring(auth.content).findtext("session_id")
    body = f"<request><to>421900123456</to><session_id>{session_id}</session_id><text>Hi</text></request>".encode()

    sent = ET.fromstring(httpx.post(f"{xml_sandbox.url}/telekom-sk/xml/send_message", content=body).content)

    assert sent.findtext("result/status") == "success" and sent.findtext("result/code") == "OK"
    message = sent.find("messages/message")
    assert sent.find("messages").get("count") == "1"
    assert message.get("id").isdigit() and message.findtext("status") == "success"
    bad = ET.fromstring(httpx.post(f"{xml_sandbox.url}/telekom-sk/xml/send_message", content=b"<request><to>1</to>").content)
    assert bad.findtext("result/code") == "INVALID_REQUEST"


def test_a_text_goes_escaped_where_xml_needs_it_and_arrives_as_it_was(provider, wire, xml_sandbox):
    text = " Line one\r\nLine two & <three> ]]> \t"
    sent_alone(provider, OutboundMessage(uuid.uuid4(), "+421900123456", text))

    body = wire[-1][2]
    assert b"Line one&#13;\nLine two &amp; &lt;three&gt; ]]&gt; \t" in body, "a raw CR would be read as a line feed"
    assert [s["text"] for s in xml_sandbox.submissions()] == [text], "the sandbox reads character data untrimmed"


def test_a_raw_form_feed_is_not_xml_and_the_sandbox_refuses_the_document(xml_sandbox):
    auth = httpx.post(f"{xml_sandbox.url}/telekom-sk/xml/auth", content=b"<request><token>sandbox-token</token></request>")
    session_id = ET.fromstring(auth.content).findtext("session_id")
    for text in (b"Page one\x0cPage two", b"Page one&#12;Page two"):  # neither raw nor as a reference (XML 1.0 section 2.2)
        body = b"<request><to>421900123456</to><session_id>" + session_id.encode() + b"</session_id><text>" + text + b"</text></request>"
        answer = ET.fromstring(httpx.post(f"{xml_sandbox.url}/telekom-sk/xml/send_message", content=body).content)
        assert answer.findtext("result/code") == "INVALID_REQUEST"
    assert [s["accepted"] for s in xml_sandbox.submissions()] == [False, False]


def test_check_reads_the_message_element(provider, sandbox_clock):
    accepted = sent_alone(provider, MESSAGE)
    sandbox_clock.advance(5)

    report = provider.check(accepted.provider_message_id)

    assert (report.delivery, report.provider_status) == (Delivery.DELIVERED, "DELIVERED")
    assert report.delivered_at is not None


def test_errors_are_classified_the_same_way_as_in_json(provider, xml_sandbox):
    xml_sandbox.add_fault(endpoint="send_message", fault="session_loss", times=1)
    assert sent_alone(provider, MESSAGE).delivery is Delivery.QUEUED

    xml_sandbox.add_fault(endpoint="send_message", fault="error_code", code="DENIED", times=1)
    denied = failed_alone(provider, MESSAGE)
    assert (denied.kind, denied.status) == (ErrorKind.PERMANENT, Status.REJECTED)

    xml_sandbox.add_fault(endpoint="send_message", fault="error_code", code="IP_NOT_ALLOWED", times=1)
    refused = failed_alone(provider, MESSAGE)
    assert (refused.code, refused.account_wide) == ("IP_NOT_ALLOWED", True)


@pytest.mark.parametrize("transport", ["json", "xml"])
def test_sms_groups_and_check_phone_number_in_both_transports(fake_sandbox, transport):
    with httpx.Client(timeout=5) as client:
        provider = TelekomSkAdapter("telekom-sk", account(f"{fake_sandbox.url}/telekom-sk", transport), client)

        groups = provider.sms_groups()
        assert [(g.id, g.paused) for g in groups] == [(1000, False), (1001, True)]
        assert [g.id for g in provider.sms_groups(limit=1, start_from=1)] == [1001]
        assert provider.check_phone_number("+421905123456") == NumberCheck(True, "Orange")
        assert provider.check_phone_number("0910123456") == NumberCheck(True, "Telekom")
        assert provider.check_phone_number("+4915123456789") == NumberCheck(False, "")
        with pytest.raises(ProviderError) as missing:
            provider.check_phone_number("")
        assert missing.value.code == "MISSING_PARAMETER"


def test_the_sandbox_spells_groups_and_numbers_as_the_document_does(fake_sandbox):
    groups = ET.fromstring(
        httpx.post(
            f"{fake_sandbox.url}/telekom-sk/xml/sms-groups", content=b"<request><token>sandbox-token</token><limit>1</limit></request>"
        ).content
    )
    assert groups.find("groups").get("count") == "1"
    assert [groups.findtext(f"groups/number/{n}") for n in ("id", "name", "isPaused")] == ["1000", "Default", "false"]
    number = ET.fromstring(
        httpx.post(
            f"{fake_sandbox.url}/telekom-sk/xml/check_phone_number",
            content=b"<request><token>sandbox-token</token><phone_number>0900000001</phone_number></request>",
        ).content
    )
    assert (number.findtext("phone_number/exists"), number.findtext("phone_number/operator")) == ("false", "")
