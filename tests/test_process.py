"""A worker process's own runtime: what Celery's pool-process hooks open, and close at its end."""

from __future__ import annotations

import os

import pytest
from celery.concurrency.prefork import process_destructor
from conftest import process_env

from sms_worker.config import reset_settings
from sms_worker.tasks import process

PROVIDERS = """
[accounts.telekom-sk]
type = "telekom-sk"
base_url = "{url}/telekom-sk"
token = "sandbox-token"

[accounts.session-key]
type = "session-key"
base_url = "{url}/session-key"
username = "sandbox-user"
password = "sandbox-pass"

[accounts.dexatel]
type = "dexatel"
base_url = "{url}/dexatel"
api_key = "sandbox-dexatel-key"
default_sender = "ACME"
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_end_of_a_worker_process_closes_its_adapters_and_its_http_client(settings_for, redis_client, sandbox, tmp_path, monkeypatch):
    path = tmp_path / "providers.toml"
    path.write_text(PROVIDERS.format(url=sandbox.url))
    for name, value in process_env(settings_for(providers_file=path)).items():
        if name.startswith("SMS_WORKER_"):
            monkeypatch.setenv(name, value)
    reset_settings()
    monkeypatch.setattr(process, "_runtime", None)
    rt = process.process_runtime()
    process.open_accounts()
    sessions = {name: account.adapter.sessions for name, account in rt.accounts.items() if account.adapter.sessions is not None}
    assert sorted(sessions) == ["session-key", "telekom-sk"]
    assert all(session.is_open for session in sessions.values()), "opening the accounts logged in at the sandbox"

    process_destructor(os.getpid(), 0)  # what a Celery pool process runs as it exits: worker_process_shutdown

    assert not any(session.is_open for session in sessions.values())
    assert rt.http_client.is_closed
    reset_settings()
