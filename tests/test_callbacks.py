"""Delivery callbacks posted by a provider move a message's status like a poll would."""

from __future__ import annotations

import json
import threading
import time

import pytest
import uvicorn
from conftest import ThreadedSandbox, promote_once, wait_until
from pydantic import SecretStr
from starlette.testclient import TestClient

from sms_worker.callbacks import create_callback_app
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port
from sms_worker.producer import send_sms
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.views import message_history

# The document's own example, trailing comma included.
TELEKOM_SK_CALLBACK = """{
  "delivery": {
    "status": "%s",
  },
  "messageId": %s,
  "channel": "sms",
  "messageParts": 1,
  "type": "dsn",
  "timestamp": "2025-10-02T08:31:39.825Z"
}"""


@pytest.fixture
def accepted(runtime, sandbox):
    message_id = send_sms("+421901234567", "callback me", runtime=runtime)
    promote_once(runtime)
    assert dispatch_batch(runtime).accepted == 1
    return message_id


def row(runtime, message_id):
    return message_history(message_id, runtime.settings.resolved_database_url).message


def post(runtime, account: str, body: str, **params):
    with TestClient(create_callback_app(runtime)) as client:
        return client.post(f"/callbacks/{account}", content=body, params=params, headers={"content-type": "application/json"})


def test_a_delivery_callback_marks_the_message_delivered_and_a_late_one_cannot_undo_it(runtime, accepted):
    provider_id = row(runtime, accepted)["provider_message_id"]

    response = post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", provider_id))

    assert response.status_code == 200
    assert response.json() == {"received": 1, "matched": 1, "changed": 1, "unknown": 0}
    found = row(runtime, accepted)
    assert (found["status"], found["delivery"], found["provider_status"]) == ("delivered", "delivered", "DELIVERED")
    assert found["delivered_at"].isoformat().startswith("2025-10-02T08:31:39")
    assert post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("SENT", provider_id)).json()["changed"] == 0
    assert row(runtime, accepted)["status"] == "delivered"


def test_a_late_callback_never_moves_a_message_back(runtime, accepted):
    provider_id = row(runtime, accepted)["provider_message_id"]

    assert post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("SENT", provider_id)).json()["changed"] == 1
    assert post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("QUEUED", provider_id)).json()["changed"] == 0
    assert (row(runtime, accepted)["status"], row(runtime, accepted)["delivery"]) == ("submitted", "sent")


def test_a_callback_for_an_unknown_message_is_counted_not_applied(runtime, accepted):
    response = post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", 999999999))

    assert response.json() == {"received": 1, "matched": 0, "changed": 0, "unknown": 1}
    assert row(runtime, accepted)["status"] == "submitted"


UNKNOWN_WORD_ACCOUNTS = {
    # Dexatel's webhook with a word its document does not name (the input), then a real one.
    "dexatel": (
        "+12025550143",
        'type = "dexatel"\nbase_url = "{url}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"',
        lambda provider_id, word: json.dumps({"message_id": provider_id, "status": word}),
        ("accepted", "delivered"),
    ),
    # A session-key callback with an SMSC's intermediate word (Jasmin #916's ACCEPTD), then DLVRD.
    "session-key": (
        "+393491234501",
        'type = "session-key"\nbase_url = "{url}/session-key"\nusername = "sandbox-user"\npassword = "sandbox-pass"',
        lambda provider_id, word: json.dumps(
            {"order_id": provider_id.rpartition(":")[0], "recipients": [{"destination": provider_id.rpartition(":")[2], "status": word}]}
        ),
        ("ACCEPTD", "DLVRD"),
    ),
}


@pytest.mark.parametrize("account", sorted(UNKNOWN_WORD_ACCOUNTS))
def test_a_word_the_adapter_does_not_know_is_recorded_and_the_next_report_still_counts(account, settings_for, redis_client, sandbox, clock, tmp_path):
    recipient, table, body, (unknown, delivered) = UNKNOWN_WORD_ACCOUNTS[account]
    providers = tmp_path / "providers.toml"
    providers.write_text(f"[accounts.{account}]\n" + table.format(url=sandbox.url) + "\n")
    runtime = build_runtime(settings_for(providers_file=providers), waker=NoWaker(), clock=clock)
    message_id = send_sms(recipient, "accepted, then delivered", runtime=runtime)
    promote_once(runtime)
    assert dispatch_batch(runtime).accepted == 1
    provider_id = row(runtime, message_id)["provider_message_id"]

    assert post(runtime, account, body(provider_id, unknown)).json()["changed"] == 0
    waiting = row(runtime, message_id)
    assert (waiting["status"], waiting["delivery"], waiting["provider_status"]) == ("submitted", "queued", unknown)
    assert waiting["next_check_at"] is not None, "still polled"
    assert post(runtime, account, body(provider_id, delivered)).json()["changed"] == 1

    history = message_history(message_id, runtime.settings.resolved_database_url)
    assert (history.message["status"], history.message["provider_status"]) == ("delivered", delivered)
    [noted] = [e for e in history.events if e["provider_status"] == unknown]
    assert (noted["status"], f"{unknown!r}") == ("submitted", noted["reason"].split(" reported ")[1].split(",")[0])
    runtime.close()


@pytest.mark.parametrize(
    ("account", "body", "status", "field"),
    [
        ("telekom-sk", "not json", 400, "body"),
        ("telekom-sk", json.dumps({"delivery": {}}), 400, "body"),
        ("nobody", "{}", 404, "account"),
    ],
)
def test_a_bad_callback_gets_a_clear_error(runtime, account, body, status, field):
    response = post(runtime, account, body)

    assert response.status_code == status
    assert response.json()["error"]["field"] == field


def test_with_a_callback_token_set_only_requests_carrying_it_are_taken(runtime, accepted):
    runtime.settings = runtime.settings.model_copy(update={"callback_token": SecretStr("s3cret")})
    provider_id = row(runtime, accepted)["provider_message_id"]
    body = TELEKOM_SK_CALLBACK % ("DELIVERED", provider_id)

    assert post(runtime, "telekom-sk", body).status_code == 403
    assert post(runtime, "telekom-sk", body, token="wrong").status_code == 403
    assert post(runtime, "telekom-sk", body, token="sécret").status_code == 403
    assert post(runtime, "telekom-sk", body, token="s3cret").status_code == 200
    assert row(runtime, accepted)["status"] == "delivered"


CALLBACK_ACCOUNTS = {
    "dexatel": ("+12025550143", 'type = "dexatel"\nbase_url = "{url}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"'),
    "telekom-sk": ("+421901234567", 'type = "telekom-sk"\nbase_url = "{url}/telekom-sk"\ntoken = "sandbox-token"'),
    "telefoon": (
        "+31612345678",
        'type = "telefoon"\nbase_url = "{url}/telefoon/v1/sms"\napi_key = "sandbox-telefoon-key"\n'
        'default_sender = "ACME"\nstatus_callback = "{receiver}"',
    ),
}


@pytest.mark.parametrize("account", sorted(CALLBACK_ACCOUNTS))
def test_the_sandbox_posts_the_delivery_callback_and_the_message_is_delivered_without_polling(account, settings_for, redis_client, clock, tmp_path):
    """End to end over HTTP: the receiver in a uvicorn thread, the sandbox posting to it (Telekom
    SK and Dexatel to the account's callback URL, Telefoon to the message's status_callback)."""
    port = free_port()
    receiver = f"http://127.0.0.1:{port}/callbacks/{account}"
    recipient, table = CALLBACK_ACCOUNTS[account]
    sandbox_settings = SandboxSettings(telekom_sk_callback_url=receiver, post_status_callbacks=True, dexatel_webhook_url=receiver)
    with ThreadedSandbox(settings=sandbox_settings) as sandbox:
        providers = tmp_path / "providers.toml"
        providers.write_text(f"[accounts.{account}]\n" + table.format(url=sandbox.url, receiver=receiver) + "\n")
        runtime = build_runtime(settings_for(providers_file=providers), waker=NoWaker(), clock=clock)
        server = uvicorn.Server(uvicorn.Config(create_callback_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_until(lambda: server.started, 10, message="callback receiver started")
            message_id = send_sms(recipient, "tell me when", runtime=runtime)
            promote_once(runtime)
            assert dispatch_batch(runtime).accepted == 1
            sent = time.monotonic()

            wait_until(lambda: row(runtime, message_id)["status"] == "delivered", 10, message="delivered by callback")

            assert time.monotonic() - sent < 5
            events = message_history(message_id, runtime.settings.resolved_database_url).events
            assert events[-1]["reason"] == f"{account} reports it delivered"
        finally:
            server.should_exit = True
            thread.join(10)
            runtime.close()
