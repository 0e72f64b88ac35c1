"""Delivery callbacks posted by a provider move a message's status like a poll would."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from conftest import PYTHON, ThreadedSandbox, process_env, promote_once, wait_until
from pydantic import SecretStr
from starlette.testclient import TestClient

from sms_worker.callback_token import generated_callback_token
from sms_worker.callbacks import MAX_BODY, MAX_RECEIPTS, REFUSALS_LOGGED_EVERY, CallbacksUnauthenticated, create_callback_app
from sms_worker.config import Settings
from sms_worker.dispatch import held as held_module
from sms_worker.dispatch.held import HOLD_SECONDS, Held, apply_held
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_sms
from sms_worker.runtime import NoWaker, Runtime, build_runtime
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


TOKEN = "callback-s3cret"
"""``SMS_WORKER_CALLBACK_TOKEN`` of these tests' runtimes, which every post carries unless told."""


@pytest.fixture
def runtime(settings_for, redis_client, clock):
    rt = build_runtime(settings_for(callback_token=TOKEN), waker=NoWaker(), clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def accepted(runtime, sandbox):
    message_id = send_sms("+421901234567", "callback me", runtime=runtime)
    promote_once(runtime)
    assert dispatch_batch(runtime).accepted == 1
    return message_id


def row(runtime, message_id):
    return message_history(message_id, runtime.settings.resolved_database_url).message


def post(runtime, account: str, body: str | bytes, *, content_type: str | None = "application/json", token: str | None = TOKEN):
    headers = {"content-type": content_type} if content_type is not None else {}
    params = {"token": token} if token is not None else {}
    with TestClient(create_callback_app(runtime)) as client:
        return client.post(f"/callbacks/{account}", content=body, params=params, headers=headers)


def test_a_delivery_callback_marks_the_message_delivered_and_a_late_one_cannot_undo_it(runtime, accepted):
    provider_id = row(runtime, accepted)["provider_message_id"]

    response = post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", provider_id))

    assert response.status_code == 200
    assert response.json() == {"received": 1, "matched": 1, "changed": 1, "unknown": 0, "held": 0}
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

    assert response.json() == {"received": 1, "matched": 0, "changed": 0, "unknown": 1, "held": 1}
    assert row(runtime, accepted)["status"] == "submitted"
    assert apply_held(runtime) == Held(applied=0, dropped=0)
    assert row(runtime, accepted)["status"] == "submitted"


def test_a_callback_that_overtakes_the_sends_answer_is_held_and_applied_once_the_id_is_written(runtime, sandbox):
    """The provider posts the receipt before the worker has written the id its answer gave (a
    message rejected at once): the receipt is held, and the poller's next round applies it."""
    message_id = send_sms("+421901234567", "rejected at once", runtime=runtime)
    promote_once(runtime)
    assert dispatch_batch(runtime).accepted == 1
    provider_id = row(runtime, message_id)["provider_message_id"]
    with runtime.engine.begin() as conn:  # as it was in the moment between the answer and its write
        conn.execute(MESSAGES.update().where(MESSAGES.c.id == message_id).values(provider_message_id=None))

    answer = post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("UNDELIVERABLE", provider_id)).json()
    assert (answer["matched"], answer["unknown"], answer["held"]) == (0, 1, 1)
    assert apply_held(runtime) == Held(applied=0, dropped=0)  # still no id: it stays held
    with runtime.engine.begin() as conn:
        conn.execute(MESSAGES.update().where(MESSAGES.c.id == message_id).values(provider_message_id=provider_id))

    assert apply_held(runtime) == Held(applied=1, dropped=0)
    assert (row(runtime, message_id)["status"], row(runtime, message_id)["provider_status"]) == ("undeliverable", "UNDELIVERABLE")
    assert apply_held(runtime) == Held(applied=0, dropped=0)  # applied once, then let go


def test_a_held_receipt_whose_id_never_comes_is_dropped_after_the_hold(runtime, accepted, monkeypatch):
    assert post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", 424242)).json()["held"] == 1
    later = time.time() + HOLD_SECONDS + 1
    monkeypatch.setattr(held_module.time, "time", lambda: later)

    assert apply_held(runtime) == Held(applied=0, dropped=1)
    assert apply_held(runtime) == Held(applied=0, dropped=0)
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
    runtime = build_runtime(settings_for(providers_file=providers, callback_token=TOKEN), waker=NoWaker(), clock=clock)
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

    assert post(runtime, "telekom-sk", body, token=None).status_code == 403
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


@contextmanager
def sandbox_posting_callbacks(account: str, settings_for, clock, tmp_path, *, token_in_url: str, listening: bool = True) -> Iterator[Runtime]:
    """A runtime with ``account`` on a sandbox that posts its callbacks over HTTP to the receiver
    (Telekom SK and Dexatel to the account's callback URL, Telefoon to the message's
    status_callback), with ``?token=<token_in_url>``; the account's own callback token is
    ``own-<account>-token``. The receiver runs in a uvicorn thread, or nothing listens on its port
    when not ``listening``."""
    port = free_port()
    receiver = f"http://127.0.0.1:{port}/callbacks/{account}?token={token_in_url}"
    table = CALLBACK_ACCOUNTS[account][1]
    sandbox_settings = SandboxSettings(telekom_sk_callback_url=receiver, post_status_callbacks=True, dexatel_webhook_url=receiver)
    with ThreadedSandbox(settings=sandbox_settings) as sandbox:
        providers = tmp_path / "providers.toml"
        providers.write_text(
            f"[accounts.{account}]\n" + table.format(url=sandbox.url, receiver=receiver) + f'\ncallback_token = "own-{account}-token"\n'
        )
        runtime = build_runtime(settings_for(providers_file=providers), waker=NoWaker(), clock=clock)
        server = uvicorn.Server(uvicorn.Config(create_callback_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        if listening:
            thread.start()
        try:
            wait_until(lambda: server.started or not listening, 10, message="callback receiver started")
            yield runtime
        finally:
            server.should_exit = True
            if listening:
                thread.join(10)
            runtime.close()


@pytest.mark.parametrize("account", sorted(CALLBACK_ACCOUNTS))
def test_the_sandbox_posts_the_delivery_callback_and_the_message_is_delivered_without_polling(account, settings_for, redis_client, clock, tmp_path):
    """End to end over HTTP, the account's own callback token in the URL. No status check is
    made; a callback that came before the send's answer was written is held, and applied as the
    poller's next round does first (:func:`~sms_worker.dispatch.held.apply_held`)."""
    with sandbox_posting_callbacks(account, settings_for, clock, tmp_path, token_in_url=f"own-{account}-token") as runtime:
        message_id, _ = accept(runtime, CALLBACK_ACCOUNTS[account][0], account)
        sent = time.monotonic()

        def delivered() -> bool:
            apply_held(runtime)
            return row(runtime, message_id)["status"] == "delivered"

        wait_until(delivered, 10, message="delivered by callback")

        assert time.monotonic() - sent < 5
        events = message_history(message_id, runtime.settings.resolved_database_url).events
        assert events[-1]["reason"] == f"{account} reports it delivered"


# --- Issue 9, kind 8: callbacks are authenticated by default, and bad bodies get a 4xx -----------


def history_of(runtime, message_id):
    return message_history(message_id, runtime.settings.resolved_database_url)


def test_a_forged_delivered_without_the_callback_token_is_refused_and_changes_nothing(runtime, accepted):
    """The issue's input: anyone who could reach the receiver posted ``delivered`` and it stuck."""
    provider_id = row(runtime, accepted)["provider_message_id"]
    before = history_of(runtime, accepted)
    forged = TELEKOM_SK_CALLBACK % ("DELIVERED", provider_id)

    for token in (None, "", "wrong", TOKEN.upper(), TOKEN + " ", TOKEN[:-1]):
        response = post(runtime, "telekom-sk", forged, token=token)
        assert (response.status_code, response.json()["error"]["field"]) == (403, "token"), token

    assert history_of(runtime, accepted) == before
    assert post(runtime, "telekom-sk", forged).json()["changed"] == 1


def test_without_any_callback_token_the_receiver_refuses_to_start_unless_the_network_is_declared_trusted(
    settings_for, redis_client, clock, sandbox, monkeypatch
):
    runtime = build_runtime(settings_for(), waker=NoWaker(), clock=clock)
    try:
        with pytest.raises(CallbacksUnauthenticated, match="SMS_WORKER_CALLBACKS_TRUSTED_NETWORK=true"):
            create_callback_app(runtime)

        monkeypatch.setenv("SMS_WORKER_CALLBACKS_TRUSTED_NETWORK", "1")
        runtime.settings = runtime.settings.model_copy(update={"callbacks_trusted_network": Settings().callbacks_trusted_network})
        message_id = send_sms("+421901234567", "on a trusted network", runtime=runtime)
        promote_once(runtime)
        assert dispatch_batch(runtime).accepted == 1
        provider_id = row(runtime, message_id)["provider_message_id"]
        assert post(runtime, "telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", provider_id), token=None).json()["changed"] == 1
    finally:
        runtime.close()


def test_the_callbacks_command_without_any_token_generates_one_in_its_home_and_takes_only_callbacks_carrying_it(
    settings_for, redis_client, sandbox, clock
):
    """Issue 15: with no token anywhere the receiver used to refuse to start, which stopped a fresh
    `honcho start`. It now keeps a generated token in SMS_WORKER_HOME/callback_token (0600), says
    where (never the token), and refuses a callback without it."""
    settings = settings_for()
    port = free_port()
    receiver = subprocess.Popen(
        [PYTHON, "-m", "sms_worker.cli", "callbacks", "--port", str(port)],
        env=process_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runtime = build_runtime(settings, waker=NoWaker(), clock=clock)
    try:
        message_id = send_sms("+421901234567", "callback me", runtime=runtime)
        promote_once(runtime)
        assert dispatch_batch(runtime).accepted == 1
        callback = TELEKOM_SK_CALLBACK % ("DELIVERED", row(runtime, message_id)["provider_message_id"])

        def post_to_receiver(token: str | None) -> httpx.Response:
            params = {"token": token} if token is not None else {}
            return httpx.post(
                f"http://127.0.0.1:{port}/callbacks/telekom-sk", content=callback, params=params, headers={"content-type": "application/json"}
            )

        def listening() -> bool:
            assert receiver.poll() is None, "the callback receiver exited"
            try:
                return post_to_receiver(None).status_code == 403
            except httpx.TransportError:
                return False

        wait_until(listening, timeout=60, message="the callback receiver to listen")
        token_file = settings.home.resolve() / "callback_token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 40

        assert post_to_receiver("not-the-token").status_code == 403
        assert row(runtime, message_id)["status"] == "submitted"
        assert post_to_receiver(token).json()["changed"] == 1
        assert row(runtime, message_id)["status"] == "delivered"
    finally:
        runtime.close()
        receiver.terminate()
        output = receiver.communicate(timeout=30)[0]
    assert f"using the one generated in {token_file}" in output
    assert token not in output
    assert "Traceback" not in output
    again = generated_callback_token(settings.home)
    assert (again.token.get_secret_value(), again.created) == (token, False), "a restart keeps the same token"


def test_each_account_takes_its_own_callback_token_and_an_account_without_one_refuses(settings_for, redis_client, clock, sandbox, tmp_path):
    """A sibling: tokens per account (the providers file's ``callback_token``), the deployment's
    token only for an account without one, and an account with neither refuses every callback."""
    providers = tmp_path / "providers.toml"
    providers.write_text(
        "[accounts.dexatel]\n"
        + UNKNOWN_WORD_ACCOUNTS["dexatel"][1].format(url=sandbox.url)
        + '\ncallback_token_env = "DEXATEL_CALLBACK_TOKEN"\n'
        + f'[accounts.telekom-sk]\ntype = "telekom-sk"\nbase_url = "{sandbox.url}/telekom-sk"\ntoken = "sandbox-token"\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEXATEL_CALLBACK_TOKEN", "dexatel-own-token")
        runtime = build_runtime(settings_for(providers_file=providers), waker=NoWaker(), clock=clock)
    try:
        message_id = send_sms("+12025550143", "per account", runtime=runtime, account="dexatel")
        promote_once(runtime)
        assert dispatch_batch(runtime).accepted == 1
        body = json.dumps({"message_id": row(runtime, message_id)["provider_message_id"], "status": "delivered"})
        telekom = TELEKOM_SK_CALLBACK % ("DELIVERED", 1)

        refused = post(runtime, "telekom-sk", telekom, token=None)
        assert refused.status_code == 403
        assert "no callback token" in refused.json()["error"]["reason"]
        assert post(runtime, "dexatel", body, token=None).status_code == 403
        runtime.settings = runtime.settings.model_copy(update={"callback_token": SecretStr(TOKEN)})
        assert post(runtime, "dexatel", body, token=TOKEN).status_code == 403, "the account's own token, not the deployment's"
        assert row(runtime, message_id)["status"] == "submitted"
        assert post(runtime, "telekom-sk", telekom, token=TOKEN).status_code == 200
        assert post(runtime, "dexatel", body, token="dexatel-own-token").json()["changed"] == 1
        assert row(runtime, message_id)["status"] == "delivered"
    finally:
        runtime.close()


def _telekom_sk(status: object = "DELIVERED", message_id: object = "{id}", **extra: object) -> Callable[[str], bytes]:
    """A Telekom SK callback for the accepted message (``{id}`` stands for its provider id)."""

    def render(provider_id: str) -> bytes:
        document = {"delivery": {"status": status}, "messageId": message_id, "type": "dsn", **extra}
        return json.dumps(document).replace('"{id}"', provider_id).encode()

    return render


MALFORMED_TELEKOM_SK = {
    # The input: 200 KB of "[" answered 500 with a RecursionError traceback.
    "200 KB of [": (lambda _: b"[" * 200_000, "application/json", 400),
    "nested objects": (lambda _: b'{"a":' * 50_000, "application/json", 400),
    "invalid UTF-8": (lambda pid: _telekom_sk()(pid)[:-1] + b', "x": "\xff\xfe"}', "application/json", 400),
    "text/html": (_telekom_sk(), "text/html", 400),
    "a form": (_telekom_sk(), "application/x-www-form-urlencoded", 400),
    "no content type": (_telekom_sk(), None, 400),
    "empty": (lambda _: b"", "application/json", 400),
    "a JSON list": (lambda pid: b"[" + _telekom_sk()(pid) + b"]", "application/json", 400),
    "a JSON string": (lambda _: b'"DELIVERED"', "application/json", 400),
    "null": (lambda _: b"null", "application/json", 400),
    "messageId an object": (_telekom_sk(message_id={"$ne": None}), "application/json", 400),
    "messageId true": (_telekom_sk(message_id=True), "application/json", 400),
    "messageId a float": (_telekom_sk(message_id=1.5), "application/json", 400),
    "messageId NaN": (lambda _: b'{"delivery": {"status": "DELIVERED"}, "messageId": NaN}', "application/json", 400),
    "messageId of 5000 digits": (lambda _: b'{"delivery": {"status": "DELIVERED"}, "messageId": ' + b"9" * 5000 + b"}", "application/json", 400),
    "messageId of 100 digits": (_telekom_sk(message_id=10**99), "application/json", 400),
    "status a number": (_telekom_sk(status=4), "application/json", 400),
    "status with NUL": (_telekom_sk(status="DELIVERED\x00"), "application/json", 400),
    "status a lone surrogate": (_telekom_sk(status="\ud800"), "application/json", 400),
    "status of 40 characters": (_telekom_sk(status="D" * 40), "application/json", 400),
    "delivery a list": (lambda pid: json.dumps({"delivery": ["DELIVERED"], "messageId": int(pid)}).encode(), "application/json", 400),
    "XML": (lambda pid: f"<callback><messageId>{pid}</messageId><status>DELIVERED</status></callback>".encode(), "application/xml", 400),
    "larger than 1 MB": (lambda pid: _telekom_sk()(pid) + b" " * MAX_BODY, "application/json", 413),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_TELEKOM_SK))
def test_a_malformed_callback_answers_4xx_with_a_short_reason_and_changes_nothing(runtime, accepted, case):
    render, content_type, status = MALFORMED_TELEKOM_SK[case]
    provider_id = row(runtime, accepted)["provider_message_id"]
    before = history_of(runtime, accepted)

    response = post(runtime, "telekom-sk", render(provider_id), content_type=content_type)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["field"] == "body" and 0 < len(error["reason"]) < 200 and "Traceback" not in error["reason"]
    assert history_of(runtime, accepted) == before


EVERY_ACCOUNT = {
    "telekom-sk-xml": 'type = "telekom-sk"\nbase_url = "{url}/telekom-sk"\ntoken = "sandbox-token"\ntransport = "xml"',
    "dt-a2p": 'type = "dt-a2p"\nbase_url = "{url}/dt-a2p"\napi_key = "sandbox-dt-key"\ndefault_sender = "+4915112345678"',
    "session-key": UNKNOWN_WORD_ACCOUNTS["session-key"][1],
    "telefoon": 'type = "telefoon"\nbase_url = "{url}/telefoon/v1/sms"\napi_key = "sandbox-telefoon-key"\ndefault_sender = "ACME"',
    "dexatel": UNKNOWN_WORD_ACCOUNTS["dexatel"][1],
}


@pytest.fixture
def every_account(settings_for, redis_client, clock, sandbox, tmp_path):
    providers = tmp_path / "providers.toml"
    providers.write_text("".join(f"[accounts.{name}]\n{table.format(url=sandbox.url)}\n" for name, table in EVERY_ACCOUNT.items()))
    rt = build_runtime(settings_for(providers_file=providers, callback_token=TOKEN), waker=NoWaker(), clock=clock)
    yield rt
    rt.close()


SAME_FOR_EVERY_ADAPTER = {
    "200 KB of [": (b"[" * 200_000, "application/json"),
    "invalid UTF-8": (b'{"id": "\xc3\x28", "status": "delivered"}', "application/json"),
    "text/plain": (b'{"id": "1", "status": "delivered"}', "text/plain"),
    "a JSON number": (b"42", "application/json"),
    "NaN": (b"NaN", "application/json"),
    "XML garbage": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><status>&a;', "application/xml"),
    "XML declared JSON": (b"<status>DELIVERED</status>", "application/json"),
}
WRONG_FIELD_TYPES = {
    "telekom-sk-xml": b'{"delivery": {"status": ["DELIVERED"]}, "messageId": 1}',
    "dt-a2p": b'[{"id": "1", "status": "delivered"}, {"id": {"$ne": null}, "status": "delivered"}]',
    "session-key": b'{"order_id": "o-1", "recipients": {"destination": "+393491234501", "status": "DLVRD"}}',
    "telefoon": b'{"id": ["SM1"], "status": "delivered", "direction": "outbound", "from": "ACME", "to": "+31612345678"}',
    "dexatel": b'{"message_id": 12345, "status": "delivered"}',
}


@pytest.mark.parametrize("account", sorted(EVERY_ACCOUNT))
def test_every_adapter_answers_malformed_callbacks_with_400(every_account, account):
    """Siblings: the same bodies to every adapter's parse_callback (XML garbage to the Telekom SK
    account speaking XML too), and a field of the wrong type in each adapter's own shape."""
    cases = {**SAME_FOR_EVERY_ADAPTER, "a field of the wrong type": (WRONG_FIELD_TYPES[account], "application/json")}
    for case, (body, content_type) in cases.items():
        response = post(every_account, account, body, content_type=content_type)
        assert response.status_code == 400, f"{account}: {case}: {response.text[:200]}"
        assert response.json()["error"]["field"] == "body", case


def test_a_callback_with_more_receipts_than_an_order_can_hold_answers_413(every_account):
    reports = [{"id": str(number), "status": "delivered"} for number in range(MAX_RECEIPTS + 1)]

    response = post(every_account, "dt-a2p", json.dumps(reports))

    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


# --- Issue 9, kind 6: every receipt in a body counts, in order of progress; reused provider ids --


def accept(runtime, recipient: str, account: str) -> tuple[uuid.UUID, str]:
    message_id = send_sms(recipient, "count every report", runtime=runtime, account=account)
    promote_once(runtime)
    assert dispatch_batch(runtime).accepted == 1
    return message_id, row(runtime, message_id)["provider_message_id"]


SEVERAL_RECEIPTS_FOR_ONE_MESSAGE = {
    # The input: DT A2P's list, delivered first and sent last, left the message SENT.
    "dt-a2p": ("+4915112345670", lambda pid: [{"id": pid, "status": "delivered"}, {"id": pid, "status": "sent"}]),
    # A sibling: a session-key order's callback naming one recipient twice, final report first.
    "session-key": (
        "+393491234501",
        lambda pid: {
            "order_id": pid.rpartition(":")[0],
            "recipients": [{"destination": pid.rpartition(":")[2], "status": word} for word in ("DLVRD", "WAIT4DLVR", "WAITING")],
        },
    ),
}


@pytest.mark.parametrize("account", sorted(SEVERAL_RECEIPTS_FOR_ONE_MESSAGE))
def test_every_receipt_in_a_body_counts_and_they_apply_in_order_of_progress(every_account, account):
    recipient, body = SEVERAL_RECEIPTS_FOR_ONE_MESSAGE[account]
    message_id, provider_id = accept(every_account, recipient, account)
    receipts = body(provider_id)
    received = len(receipts) if isinstance(receipts, list) else len(receipts["recipients"])

    answer = post(every_account, account, json.dumps(receipts)).json()

    assert (answer["received"], answer["matched"], answer["unknown"]) == (received, received, 0)
    history = history_of(every_account, message_id)
    assert (history.message["status"], history.message["delivery"]) == ("delivered", "delivered")
    reports = [e["reason"].rpartition(" reports it ")[2] for e in history.events if " reports it " in e["reason"]]
    assert reports[-2:] == ["sent", "delivered"], "the sent report counted too, before the delivered one"
    assert answer["changed"] == len(reports)


REUSED_IDS = {
    # The input: after a sandbox restart a Telekom SK id names a second message.
    "telekom-sk-xml": ("+421901234567", lambda pid, word: f'{{"delivery": {{"status": "{word.upper()}"}}, "messageId": {pid}}}'),
    # A sibling: DT A2P's ids restart as well.
    "dt-a2p": ("+4915112345670", lambda pid, word: json.dumps({"id": pid, "status": word})),
}


@pytest.mark.parametrize("account", sorted(REUSED_IDS))
def test_a_provider_id_reused_after_a_restart_reaches_the_message_submitted_last_and_counts_never_go_negative(every_account, sandbox, clock, account):
    recipient, body = REUSED_IDS[account]
    older, reused = accept(every_account, recipient, account)
    sandbox.__exit__()
    clock.advance(60)
    with ThreadedSandbox(port=sandbox.port):
        newer, provider_id = accept(every_account, recipient, account)
    assert provider_id == reused, "the restarted sandbox reused the id"

    answer = post(every_account, account, body(provider_id, "delivered")).json()

    assert answer == {"received": 1, "matched": 1, "changed": 1, "unknown": 0, "held": 0}
    assert row(every_account, newer)["status"] == "delivered"
    assert row(every_account, older)["status"] == "submitted", "the older holder of the id is left alone"
    unknown_id = str(10**12 + 7)
    for word, unknown in (("sent", 0), ("delivered", 1)):
        answer = post(every_account, account, body(unknown_id if unknown else provider_id, word)).json()
        assert min(answer.values()) >= 0
        assert (answer["received"], answer["matched"], answer["unknown"]) == (1, 1 - unknown, unknown)
    assert row(every_account, older)["status"] == "submitted"


# --- Issue 16: a refused callback is logged, so an operator learns the provider's URL is wrong --


def refusal_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sms_worker.callbacks" and r.levelname == "WARNING" and "refused a callback" in r.getMessage()
    ]


REFUSALS = {
    # case: (account, body, token, status, what the log line names)
    "no token": ("telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", "{id}"), None, 403, "no token"),
    "an empty token": ("telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", "{id}"), "", 403, "no token"),
    "a wrong token": ("telekom-sk", TELEKOM_SK_CALLBACK % ("DELIVERED", "{id}"), "not-the-callback-token", 403, "wrong token"),
    "an unknown account": ("nobody", "{}", TOKEN, 404, "unknown account"),
    "a bad body": ("telekom-sk", "not json", TOKEN, 400, "bad body, answered 400: a Telekom SK callback is not JSON"),
    "a body too large": ("telekom-sk", " " * (MAX_BODY + 1), TOKEN, 413, f"too large, answered 413: larger than {MAX_BODY} bytes"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_callback_is_logged_naming_the_account_the_cause_and_the_peer_never_the_token(runtime, accepted, caplog, case):
    """The issue's input: a provider given the URL without ``?token=`` had every callback refused
    403, and the receiver said nothing. Each refusal is now a warning; the answer is unchanged."""
    account, body, token, status, cause = REFUSALS[case]
    before = history_of(runtime, accepted)

    response = post(runtime, account, body.replace("{id}", row(runtime, accepted)["provider_message_id"]), token=token)

    assert response.status_code == status
    [line] = refusal_lines(caplog)
    assert f"refused a callback for account '{account}' from testclient:" in line
    assert cause in line and f"answered {status}" in line
    assert TOKEN not in line and "not-the-callback-token" not in line
    assert history_of(runtime, accepted) == before, "nothing written"


def test_a_flood_of_refused_callbacks_is_one_line_a_minute_per_account_and_cause_with_a_count(runtime, accepted, caplog, clock):
    forged = TELEKOM_SK_CALLBACK % ("DELIVERED", row(runtime, accepted)["provider_message_id"])
    before = history_of(runtime, accepted)
    with TestClient(create_callback_app(runtime)) as client:

        def refused(token: str | None) -> None:
            params = {"token": token} if token is not None else {}
            answer = client.post("/callbacks/telekom-sk", content=forged, params=params, headers={"content-type": "application/json"})
            assert answer.status_code == 403

        for _ in range(50):
            refused("wrong")
        refused(None)
        clock.advance(REFUSALS_LOGGED_EVERY - 1)
        refused("wrong")
        assert [line.split(": ", 1)[1] for line in refusal_lines(caplog)] == [
            "wrong token, answered 403 (more like it: one line every 60 s, with a count)",
            "no token (the URL given to the provider lacks ?token=), answered 403 (more like it: one line every 60 s, with a count)",
        ]
        clock.advance(1)
        refused("wrong")

    assert refusal_lines(caplog)[-1].endswith(": wrong token, answered 403 (50 more like it since the line before)")
    assert history_of(runtime, accepted) == before


def sandbox_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sms_worker.sandbox.webhooks" and r.levelname == "WARNING"]


@pytest.mark.parametrize("account", sorted(CALLBACK_ACCOUNTS))
def test_a_callback_the_receiver_refuses_is_logged_by_both_sides_without_the_token(account, settings_for, redis_client, clock, tmp_path, caplog):
    """End to end, the operator's mistake: the provider was given the URL with a wrong token. The
    sandbox says its callback was answered 403 (the URL without its query), the receiver says
    why it refused it; the message waits for the poller."""
    with sandbox_posting_callbacks(account, settings_for, clock, tmp_path, token_in_url="stale-token") as runtime:
        message_id, _ = accept(runtime, CALLBACK_ACCOUNTS[account][0], account)

        wait_until(lambda: sandbox_warnings(caplog) and refusal_lines(caplog), 10, message="both sides to log the refusal")

        assert row(runtime, message_id)["status"] == "submitted"
    [refused] = refusal_lines(caplog)
    assert f"refused a callback for account '{account}' from 127.0.0.1:" in refused and "wrong token, answered 403" in refused
    [posted] = sandbox_warnings(caplog)
    assert re.fullmatch(
        rf"the {account} sandbox's callback to http://127\.0\.0\.1:\d+/callbacks/{account} was answered 403; it is not posted again .*", posted
    )
    for line in (refused, posted):
        assert "stale-token" not in line and f"own-{account}-token" not in line and "?" not in line


def test_a_callback_the_sandbox_cannot_deliver_is_logged_naming_the_url_without_its_query(settings_for, redis_client, clock, tmp_path, caplog):
    with sandbox_posting_callbacks("telekom-sk", settings_for, clock, tmp_path, token_in_url="own-telekom-sk-token", listening=False) as runtime:
        accept(runtime, CALLBACK_ACCOUNTS["telekom-sk"][0], "telekom-sk")

        wait_until(lambda: sandbox_warnings(caplog), 10, message="the sandbox to log the failed callback")

    [line] = sandbox_warnings(caplog)
    assert line.startswith("the telekom-sk sandbox's callback to http://127.0.0.1:")
    assert "/callbacks/telekom-sk could not be delivered (ConnectError: " in line
    assert "token" not in line
