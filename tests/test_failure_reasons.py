"""A message that ends failed says why: ``sms-worker status ID --json`` shows an ``error_code`` and
an ``error_text`` naming the cause, whether the provider's report came by the status poller, by a
delivery callback, or in its answer to the send itself."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from accounts import fault, write_providers
from conftest import ThreadedSandbox, process_env, promote_once, wait_until
from forked import run_cli
from misbehaving import MisbehavingServer
from starlette.testclient import TestClient

from sms_worker.callbacks import create_callback_app
from sms_worker.config import Settings
from sms_worker.dispatch.held import apply_held
from sms_worker.dispatch.receipts import poll_statuses
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port
from sms_worker.runtime import NoWaker, Runtime, build_runtime
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.views import message_history

TOKEN = "own-callback-token"
RECIPIENTS = {"telekom-sk": "+421901234567", "dt-a2p": "+4915112345679", "dexatel": "+12025550143", "telefoon": "+31612345678"}


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=process_env(settings))


def sent(rt: Runtime, account: str) -> str:
    """A message queued with ``sms-worker send`` to ``account``'s recipient, then handed to the
    account by one dispatch; its id."""
    result = cli(rt.settings, "send", RECIPIENTS[account], "will it arrive?", "--json")
    assert result.returncode == 0, result.stderr
    promote_once(rt)
    assert dispatch_batch(rt).accepted == 1
    return json.loads(result.stdout)["id"]


def shown(rt: Runtime, message_id: str) -> dict:
    """What ``sms-worker status ID --json`` prints (exit 0, nothing on stderr)."""
    result = cli(rt.settings, "status", message_id, "--json")
    assert (result.returncode, result.stderr) == (0, "")
    return json.loads(result.stdout)


def runtime_for(settings_for, tmp_path: Path, url: str, account: str) -> Runtime:
    """A runtime on the system clock with one account of the sandbox at ``url``, taking callbacks
    with :data:`TOKEN`."""
    providers = write_providers(tmp_path / "providers.toml", url, [account])
    return build_runtime(settings_for(providers_file=providers, callback_token=TOKEN), waker=NoWaker())


def assert_failed_with(found: dict, status: str, code: str, text: str) -> None:
    message = found["message"]
    assert (message["status"], message["error_code"], message["error_text"]) == (status, code, text)
    assert (found["events"][-1]["status"], found["events"][-1]["code"], found["events"][-1]["reason"]) == (status, code, text)


@pytest.mark.parametrize(
    ("account", "final", "status", "code", "word"),
    [
        ("telekom-sk", "UNDELIVERABLE", "undeliverable", "REPORTED_UNDELIVERABLE", "UNDELIVERABLE"),
        ("dt-a2p", "EXPIRED", "expired", "REPORTED_EXPIRED", "expired"),
        ("dexatel", "DENIED", "rejected", "REPORTED_REJECTED", "failed"),
    ],
)
def test_a_failure_the_poller_learns_of_is_shown_with_its_code_and_the_providers_word(
    settings_for, redis_client, sandbox, tmp_path, account, final, status, code, word
):
    rt = runtime_for(settings_for, tmp_path, sandbox.url, account)
    fault(sandbox, provider=account, fault="final_status", status=final)
    message_id = sent(rt, account)

    def final_by_poll() -> bool:
        poll_statuses(rt)
        return shown_status(rt, message_id) == status

    wait_until(final_by_poll, 15, 0.3, f"the poller to find the message {status}")

    assert_failed_with(shown(rt, message_id), status, code, f"{account} reports it {status} (its status {word!r})")
    rt.close()


def shown_status(rt: Runtime, message_id: str) -> str:
    return message_history(uuid.UUID(message_id), rt.settings.resolved_database_url).message["status"]


def test_telefoons_own_reason_for_a_failure_is_in_the_error_text(settings_for, redis_client, sandbox, tmp_path):
    """A sibling by the poller: Telefoon gives an error code beside its word, and it is the why."""
    rt = runtime_for(settings_for, tmp_path, sandbox.url, "telefoon")
    fault(sandbox, provider="telefoon", fault="final_status", status="DENIED")
    message_id = sent(rt, "telefoon")

    def final_by_poll() -> bool:
        poll_statuses(rt)
        return shown_status(rt, message_id) == "rejected"

    wait_until(final_by_poll, 15, 0.3, "the poller to find the message rejected")

    text = "telefoon reports it rejected (its status 'failed'; its error 30007: The message was filtered by the carrier)"
    assert_failed_with(shown(rt, message_id), "rejected", "REPORTED_REJECTED", text)
    rt.close()


def test_a_send_answered_failed_at_once_is_shown_with_its_code(settings_for, redis_client, tmp_path):
    """The provider's answer to the send is already final (the sandbox ends the message at once):
    the message is final on acceptance, and says why as a receipt would."""
    with ThreadedSandbox(settings=SandboxSettings(sent_after=0, delivered_after=0)) as at_once:
        rt = runtime_for(settings_for, tmp_path, at_once.url, "telefoon")
        fault(at_once, provider="telefoon", fault="final_status", status="UNDELIVERABLE")
        message_id = sent(rt, "telefoon")

        found = shown(rt, message_id)

    provider_id = found["message"]["provider_message_id"]
    text = (
        f"accepted by telefoon as {provider_id}; telefoon reports it undeliverable "
        "(its status 'undelivered'; its error 30003: Unreachable destination handset)"
    )
    assert_failed_with(found, "undeliverable", "REPORTED_UNDELIVERABLE", text)
    rt.close()


@contextmanager
def callback_receiver(rt: Runtime, port: int) -> Iterator[None]:
    """``rt``'s callback receiver over real HTTP on ``port``, in a thread."""
    server = uvicorn.Server(uvicorn.Config(create_callback_app(rt), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, message="callback receiver started")
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(("account", "word"), [("telekom-sk", "UNDELIVERABLE"), ("dexatel", "undelivered")])
def test_a_failure_a_callback_brings_is_shown_with_its_code_and_the_providers_word(settings_for, redis_client, tmp_path, account, word):
    """End to end: the sandbox ends the message undeliverable and posts the callback to the
    receiver, with no status check at all. The callback may come before the send's answer is
    written (held, then applied by the poller's next round: :mod:`sms_worker.dispatch.held`)."""
    port = free_port()
    receiver = f"http://127.0.0.1:{port}/callbacks/{account}?token={TOKEN}"
    with ThreadedSandbox(settings=SandboxSettings(telekom_sk_callback_url=receiver, dexatel_webhook_url=receiver)) as sandbox:
        rt = runtime_for(settings_for, tmp_path, sandbox.url, account)
        with callback_receiver(rt, port):
            fault(sandbox, provider=account, fault="final_status", status="UNDELIVERABLE")
            message_id = sent(rt, account)

            def ended() -> bool:
                apply_held(rt)  # what each round of the receipts poller does first
                return shown_status(rt, message_id) == "undeliverable"

            wait_until(ended, 10, message="the callback to end the message")

    text = f"{account} reports it undeliverable (its status {word!r})"
    assert_failed_with(shown(rt, message_id), "undeliverable", "REPORTED_UNDELIVERABLE", text)
    rt.close()


def test_telekom_sks_retries_then_undeliverable_by_callback_say_why(settings_for, redis_client, sandbox, tmp_path):
    """The complaint's case: Telekom SK reports ``ERROR`` (it retries, up to 5 times within 60
    minutes) and then ``UNDELIVERABLE``; the message ends undeliverable, and says so."""
    rt = runtime_for(settings_for, tmp_path, sandbox.url, "telekom-sk")
    message_id = sent(rt, "telekom-sk")
    provider_id = shown(rt, message_id)["message"]["provider_message_id"]

    with TestClient(create_callback_app(rt)) as client:
        for word in ("ERROR", "UNDELIVERABLE"):
            body = json.dumps({"delivery": {"status": word}, "messageId": int(provider_id)})
            answer = client.post("/callbacks/telekom-sk", content=body, params={"token": TOKEN}, headers={"content-type": "application/json"})
            assert answer.status_code == 200

    found = shown(rt, message_id)
    assert_failed_with(found, "undeliverable", "REPORTED_UNDELIVERABLE", "telekom-sk reports it undeliverable (its status 'UNDELIVERABLE')")
    assert found["message"]["provider_status"] == "UNDELIVERABLE"
    rt.close()


def test_an_error_answer_naming_no_code_is_shown_as_no_code(settings_for, redis_client, tmp_path):
    """A provider's error answer without a code (``{"error": {}}`` under 200) once ended the
    message undeliverable with an empty code and text."""
    with MisbehavingServer() as server:
        providers = tmp_path / "providers.toml"
        providers.write_text(f'[accounts.codeless]\ntype = "dexatel"\nbase_url = "{server.url}/codeless"\napi_key = "any"\ndefault_sender = "ACME"\n')
        rt = build_runtime(settings_for(providers_file=providers), waker=NoWaker())
        result = cli(rt.settings, "send", RECIPIENTS["dexatel"], "anyone there?", "--json")
        promote_once(rt)
        dispatch_batch(rt)

    message_id = json.loads(result.stdout)["id"]
    text = "permanent failure NO_CODE: the provider's error answer names no code"
    assert_failed_with(shown(rt, message_id), "undeliverable", "NO_CODE", text)
    rt.close()
