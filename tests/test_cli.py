"""The `sms-worker` command as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from conftest import PYTHON, alive, process_env, promote_once, wait_until
from forked import run_cli as cli
from forked import run_python

from sms_worker.config import Settings
from sms_worker.db.migrate import alembic_config, latest_revision
from sms_worker.embedded import free_port

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For a test of the command line whose database does not matter: the commands reach both
databases through the same code, which test_send_then_status..., the not-migrated tests and the
producer's own tests run on PostgreSQL too."""


def segments(text: str) -> dict:
    result = cli("segments", text, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_segments_of_plain_gsm_text():
    report = segments("a" * 160)
    assert (report["encoding"], report["segments"], report["units"], report["forced_ucs2"]) == ("GSM-7", 1, 160, [])
    assert segments("a" * 161)["segments"] == 2


def test_extension_characters_cost_two_septets():
    report = segments("€" * 80)
    assert (report["encoding"], report["units"], report["segments"]) == ("GSM-7", 160, 1)
    assert segments("€" * 81)["segments"] == 2


def test_an_escape_pair_is_never_split_across_segments():
    report = segments("a" * 152 + "{" + "b" * 10)
    assert report["segments"] == 2
    assert report["segment_texts"] == ["a" * 152, "{" + "b" * 10]


def test_characters_outside_the_bmp_are_two_units_and_never_split():
    report = segments("ž" + "a" * 65 + "😀" + "b")
    assert report["encoding"] == "UCS-2"
    assert report["forced_ucs2"] == ["ž", "😀"]
    assert report["units"] == 69
    long = segments("a" * 66 + "😀" + "b" * 10)
    assert long["segments"] == 2
    assert long["segment_texts"][0] == "a" * 66 and long["segment_texts"][1].startswith("😀")


@SQLITE_ONLY
def test_status_wait_gives_up_on_a_message_no_worker_sends_saying_so(settings_for, redis_client):
    """With no worker a message stays queued: --wait shows it as it is when the wait ends, says
    so on stderr and exits 5 (the README's first message, delivered, is tests/test_examples.py's)."""
    env = process_env(settings_for())
    message_id = json.loads(cli("send", "+421900123456", "nobody sends me", "--json", env=env).stdout)["id"]

    waited = cli("status", message_id, "--wait", "0.5", "--json", env=env)

    assert waited.returncode == 5, waited.stderr
    assert json.loads(waited.stdout)["message"]["status"] == "queued"
    assert waited.stderr.strip() == "note: not final after 0.5 s: it is queued"
    refused = cli("status", message_id, "--wait", "-1", env=env)
    assert refused.returncode == 2 and "--wait" in refused.stderr and "Traceback" not in refused.stderr


def test_send_rejects_bad_input_naming_the_field(tmp_path):
    env = process_env_for(tmp_path)
    result = cli("send", "12", "hello", "--json", env=env)
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["field"] == "to"
    result = cli("send", "+421900123456", "hello", "--priority", "urgent", env=env)
    assert result.returncode == 2
    assert "priority: 'urgent' is not one of high, standard, low" in result.stderr


def test_send_then_status_shows_the_message_and_its_history(settings_for, redis_client):
    env = process_env(settings_for())
    sent = cli("send", "+421900123456", "hello", "--priority", "high", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["id"]

    shown = json.loads(cli("status", message_id, "--json", env=env).stdout)

    assert shown["message"]["status"] == "queued"
    assert shown["message"]["priority"] == "high"
    assert shown["message"]["recipient"] == "+42190****456"
    assert [e["reason"] for e in shown["events"]] == ["accepted"]
    stats = json.loads(cli("stats", "--json", env=env).stdout)
    assert stats["ready"] == {"high": 1, "standard": 0, "low": 0}
    assert stats["statuses"] == {"queued": 1}


def process_env_for(tmp_path) -> dict[str, str]:
    from sms_worker.config import Settings

    return process_env(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'cli.db'}", redis_url="redis://127.0.0.1:1/0"))


def test_segments_after_the_gsm7_downgrade():
    result = cli("segments", "Ďakujeme, čoskoro doručíme “zásielku”", "--unicode", "false", "--json")
    report = json.loads(result.stdout)
    assert (report["encoding"], report["forced_ucs2"]) == ("GSM-7", [])
    assert report["downgraded_text"] == 'Dakujeme, coskoro dorucime "zasielku"'
    assert report["unmapped"] == []


def test_segments_names_what_send_unicode_false_refuses():
    result = cli("segments", "Ďakujeme 🎉", "--unicode", "false")
    assert "refused by `send --unicode false`, no GSM-7 form: 🎉" in result.stdout
    assert "sent as" not in result.stdout, "a text send refuses is never shown as what is sent"
    assert "folded, each refused character as ?: Dakujeme ?" in result.stdout


@SQLITE_ONLY
def test_an_account_wide_fault_pauses_the_account_until_an_operator_resumes_it(runtime, sandbox, settings_for):
    from sms_worker.dispatch.service import dispatch_batch
    from sms_worker.producer import send_sms

    env = process_env(settings_for())
    sandbox.add_fault(endpoint="send_message", fault="error_code", code="IP_NOT_ALLOWED", times=1)
    send_sms("+421900123456", "first", runtime=runtime)
    dispatch_batch(runtime)

    listed = json.loads(cli("accounts", "--json", env=env).stdout)
    assert listed[0]["name"] == "telekom-sk"
    assert listed[0]["paused"].startswith("IP_NOT_ALLOWED")
    stats = json.loads(cli("stats", "--json", env=env).stdout)
    assert stats["statuses"] == {"queued": 1} and stats["due"] == 1

    resumed = cli("accounts", "resume", "telekom-sk", env=env)
    assert resumed.stdout.strip() == "telekom-sk: pause lifted"
    assert json.loads(cli("accounts", "--json", env=env).stdout)[0]["paused"] is None


def two_accounts_env(sandbox, settings_for, tmp_path) -> dict[str, str]:
    """Accounts ``sk`` (credentials good) and ``dexatel`` (its API key wrong), on the sandbox."""
    path = tmp_path / "providers.toml"
    path.write_text(f"""
[accounts.sk]
type = "telekom-sk"
base_url = "{sandbox.url}/telekom-sk"
token = "sandbox-token"
rate = 40

[accounts.dexatel]
type = "dexatel"
base_url = "{sandbox.url}/dexatel"
api_key_env = "DEXATEL_TEST_KEY"
default_sender = "ACME"
rate = 5
""")
    return process_env(settings_for(providers_file=path), DEXATEL_TEST_KEY="not-the-key")


@SQLITE_ONLY
def test_accounts_lists_each_account_and_check_verifies_credentials(sandbox, settings_for, tmp_path):
    env = two_accounts_env(sandbox, settings_for, tmp_path)

    listed = {account["name"]: account for account in json.loads(cli("accounts", "--json", env=env).stdout)}
    assert (listed["sk"]["type"], listed["sk"]["rate_limit"], listed["sk"]["breaker"]) == ("telekom-sk", 40, "closed")
    assert (listed["dexatel"]["type"], listed["dexatel"]["rate_limit"], listed["dexatel"]["paused"]) == ("dexatel", 5, None)

    checked = cli("accounts", "check", env=env)
    assert checked.returncode == 1
    lines = dict(line.split(None, 1) for line in checked.stdout.splitlines())
    assert lines["sk"].startswith("OK")
    assert lines["dexatel"].startswith("FAIL") and "account-wide" in lines["dexatel"]
    assert "not-the-key" not in checked.stdout + checked.stderr, "a secret is never printed"
    assert cli("accounts", "check", "sk", env=env).returncode == 0
    unknown = cli("accounts", "--json", "check", "nobody", env=env)
    assert (unknown.returncode, json.loads(unknown.stdout)["error"]["field"]) == (2, "name")


@SQLITE_ONLY
def test_accounts_check_names_where_it_could_not_connect_never_the_query(sandbox, settings_for, tmp_path):
    """Issue 16: without network, `accounts check` printed `CONNECTION: ConnectError: [Errno -2]
    Name or service not known`, not what it had tried to reach. Each failure names the origin of
    the request: an unresolvable host, a refused port (a session-key login, whose query carries
    the password), a wrong URL answered 404."""
    refused = free_port()
    path = tmp_path / "providers.toml"
    path.write_text(f"""
[accounts.unresolvable]
type = "dexatel"
base_url = "http://no-such-host.invalid/dexatel"
api_key = "sandbox-dexatel-key"
default_sender = "ACME"

[accounts.refused]
type = "session-key"
base_url = "http://127.0.0.1:{refused}/session-key"
username = "sandbox-user"
password_env = "SESSION_KEY_TEST_PASSWORD"

[accounts.wrong-path]
type = "telefoon"
base_url = "{sandbox.url}/no-such-api"
api_key = "sandbox-telefoon-key"
default_sender = "ACME"
""")
    env = process_env(settings_for(providers_file=path), SESSION_KEY_TEST_PASSWORD="s3cret-pass")

    checked = cli("accounts", "check", env=env)

    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    lines = dict(line.split(None, 1) for line in checked.stdout.splitlines())
    assert lines["unresolvable"].startswith("FAIL  transient error CONNECTION: could not connect to http://no-such-host.invalid: ConnectError: ")
    assert (
        lines["refused"]
        == f"FAIL  transient error CONNECTION: could not connect to http://127.0.0.1:{refused}: ConnectError: [Errno 111] Connection refused"
    )
    assert lines["wrong-path"] == f"FAIL  account-wide permanent error HTTP_404: {sandbox.url} answered 404: Not Found"
    assert "s3cret-pass" not in checked.stdout + checked.stderr and "?" not in checked.stdout


@SQLITE_ONLY
def test_a_message_whose_provider_cannot_be_reached_says_where_in_its_status(settings_for, redis_client, tmp_path):
    """A sibling: the same text is a message's error_text, shown by `sms-worker status --json`."""
    from sms_worker.dispatch.service import dispatch_batch
    from sms_worker.runtime import NoWaker, build_runtime

    refused = free_port()
    path = tmp_path / "providers.toml"
    path.write_text(
        f'[accounts.dexatel]\ntype = "dexatel"\nbase_url = "http://127.0.0.1:{refused}/dexatel"\napi_key = "k"\ndefault_sender = "ACME"\n'
    )
    settings = settings_for(providers_file=path)
    env = process_env(settings)
    sent = cli("send", "+12025550143", "anyone there?", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    rt = build_runtime(settings, waker=NoWaker())
    try:
        promote_once(rt)
        assert dispatch_batch(rt).retrying == 1
    finally:
        rt.close()

    shown = json.loads(cli("status", json.loads(sent.stdout)["id"], "--json", env=env).stdout)["message"]

    assert (shown["status"], shown["error_code"]) == ("retrying", "CONNECTION")
    assert shown["error_text"].startswith(
        f"transient failure CONNECTION: could not connect to http://127.0.0.1:{refused}: ConnectError: [Errno 111] Connection refused; retry 1 at "
    )


@SQLITE_ONLY
def test_a_bad_providers_file_is_reported_naming_the_field(settings_for, tmp_path):
    path = tmp_path / "providers.toml"
    path.write_text('[accounts.x]\ntype = "dexatel"\nbase_url = "http://x"\nrate = -1\n')

    result = cli("accounts", env=process_env(settings_for(providers_file=path)))

    assert result.returncode != 0
    assert "accounts.x.rate: must be a positive number" in result.stderr
    assert "Traceback" not in result.stderr


ROUTING_TYPOS = [
    (
        '[[routes]]\ncountries = ["Slovakia"]\naccounts = { x = 1 }\n',
        "routes[0].countries[0]: must be an ISO 3166 alpha-2 country code, not 'Slovakia': did you mean 'SK'?",
    ),
    (
        '[[routes]]\ncountries = ["SVK"]\naccounts = { x = 1 }\n',
        "routes[0].countries[0]: must be an ISO 3166 alpha-2 country code, not 'SVK': did you mean 'SK'?",
    ),
    (
        '[[routes]]\ncountries = ["SK", "ZZ"]\naccounts = { x = 1 }\n',
        "routes[0].countries[1]: must be an ISO 3166 alpha-2 country code, not 'ZZ' (such as 'SK' or 'DE')",
    ),
    (
        '[accounts.x]\nalphanumeric_countries = ["Germany"]\n',
        "accounts.x.alphanumeric_countries[0]: must be an ISO 3166 alpha-2 country code, not 'Germany': did you mean 'DE'?",
    ),
]


@pytest.mark.parametrize(("extra", "message"), ROUTING_TYPOS, ids=["a country name", "an alpha-3 code", "no such code", "alphanumeric_countries"])
@SQLITE_ONLY
def test_a_routing_typo_stops_every_command_naming_the_field_and_the_code_meant(settings_for, tmp_path, extra, message):
    account = '[accounts.x]\ntype = "dexatel"\nbase_url = "http://127.0.0.1:9/dexatel"\napi_key = "k"\ndefault_sender = "ACME"\n'
    if extra.startswith("[accounts.x]"):
        account, extra = account + extra.removeprefix("[accounts.x]\n"), ""
    path = tmp_path / "providers.toml"
    path.write_text(account + extra)

    for command in (["accounts"], ["send", "+421900123456", "hi"]):
        result = cli(*command, env=process_env(settings_for(providers_file=path)))
        assert (result.returncode, result.stderr.strip()) == (2, f"error: SMS_WORKER_PROVIDERS_FILE: {path}: {message}"), command


@pytest.mark.parametrize("base_url", ["127.0.0.1:8025/dexatel", "ftp://127.0.0.1/dexatel", "http:///dexatel"])
@SQLITE_ONLY
def test_a_base_url_that_is_not_a_url_is_refused_when_the_file_is_read(settings_for, tmp_path, base_url):
    path = tmp_path / "providers.toml"
    path.write_text(f'[accounts.x]\ntype = "dexatel"\nbase_url = "{base_url}"\napi_key = "k"\ndefault_sender = "ACME"\n')

    result = cli("accounts", "--json", env=process_env(settings_for(providers_file=path)))

    assert result.returncode == 2
    assert f"accounts.x.base_url: must be an http(s) URL such as 'https://api.example.com/v1', not {base_url!r}" in result.stdout
    assert "Traceback" not in result.stderr


UNKNOWN_KEYS = [
    (
        '[accounts.x]\ntype = "dexatel"\nbase_url = "http://127.0.0.1:9/dexatel"\napi_key = "k"\ndefault_sender = "ACME"\nrat = 30\n',
        "accounts.x.rat: is not an option of type dexatel (known: alphanumeric_countries, api_key, api_key_env, base_url, burst, "
        "callback_token, callback_token_env, check_rate, default_sender, on_ambiguous, rate, receipt_callbacks, senders): "
        "did you mean 'rate'?",
    ),
    (
        '[accounts.x]\ntype = "telekom-sk"\nbase_url = "http://127.0.0.1:9/telekom-sk"\ntoken_evn = "SK_TOKEN"\n',
        "accounts.x.token_evn: is not an option of type telekom-sk (known: alphanumeric_countries, base_url, burst, callback_token, "
        "callback_token_env, check_rate, on_ambiguous, rate, receipt_callbacks, senders, token, token_env, transport, use_session): "
        "did you mean 'token_env'?",
    ),
    (
        '[accounts.x]\ntype = "telekom-sk"\nbase_url = "http://127.0.0.1:9/telekom-sk"\ntoken = "t"\n[routng]\ndefault = ["x"]\n',
        "routng: is not a section of the providers file (accounts, routes, routing): did you mean 'routing'?",
    ),
    (
        '[accounts.x]\ntype = "telekom-sk"\nbase_url = "http://127.0.0.1:9/telekom-sk"\ntoken = "t"\n[[routes]]\ncountres = ["SK"]\naccounts = ["x"]\n',
        "routes[0].countres: is not a route field (countries, prefixes, accounts): did you mean 'countries'?",
    ),
    (
        '[accounts.x]\ntype = "telekom-sk"\nbase_url = "http://127.0.0.1:9/telekom-sk"\ntoken = "t"\n[routing]\ndefualt = ["x"]\n',
        "routing.defualt: is not a field of [routing] (default): did you mean 'default'?",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), UNKNOWN_KEYS, ids=["an option", "a credential's variable", "a section", "a route field", "a routing field"]
)
@SQLITE_ONLY
def test_a_misspelt_key_of_the_providers_file_is_named_with_the_key_meant(settings_for, tmp_path, text, message):
    path = tmp_path / "providers.toml"
    path.write_text(text)

    result = cli("accounts", env=process_env(settings_for(providers_file=path)))

    assert result.returncode == 2
    assert f"{path}: {message}" in result.stderr.strip().removeprefix("error: SMS_WORKER_PROVIDERS_FILE: ").splitlines()
    assert "Traceback" not in result.stderr


@SQLITE_ONLY
def test_a_providers_file_that_is_not_text_is_said_so(settings_for, tmp_path):
    path = tmp_path / "providers.toml"
    path.write_bytes("[accounts.x]\nbase_url = 'http://127.0.0.1:9/p\u00e1th'\n".encode("utf-16"))

    result = cli("accounts", env=process_env(settings_for(providers_file=path)))

    assert (result.returncode, result.stderr.strip()) == (2, f"error: SMS_WORKER_PROVIDERS_FILE: providers file {path}: not UTF-8 text (TOML is)")


@SQLITE_ONLY
def test_a_country_code_in_lower_case_routes_as_its_code(sandbox, settings_for, redis_client, tmp_path):
    path = tmp_path / "providers.toml"
    path.write_text(
        f'[accounts.dexatel]\ntype = "dexatel"\nbase_url = "{sandbox.url}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"\n'
        f'[accounts.telekom-sk]\ntype = "telekom-sk"\nbase_url = "{sandbox.url}/telekom-sk"\ntoken = "sandbox-token"\n'
        '[[routes]]\ncountries = ["sk"]\naccounts = { telekom-sk = 1 }\n[routing]\ndefault = { dexatel = 1 }\n'
    )
    env = process_env(settings_for(providers_file=path))

    sent = cli("send", "+421900123456", "to Slovakia", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    shown = json.loads(cli("status", json.loads(sent.stdout)["id"], "--json", env=env).stdout)
    assert shown["message"]["account"] == "telekom-sk"


@SQLITE_ONLY
def test_the_example_providers_file_works_as_shipped(settings_for, redis_client):
    example = Path(__file__).resolve().parents[1] / "providers.example.toml"

    result = cli("accounts", "--json", env=process_env(settings_for(providers_file=example)))

    assert result.returncode == 0, result.stderr
    assert sorted(account["name"] for account in json.loads(result.stdout)) == ["dexatel", "dt-a2p", "session-key", "telefoon", "telekom-sk"]


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        (["--region", "XX", "+421900123456", "hi"], "region", "must be an ISO 3166 alpha-2 country code, not 'XX' (such as 'SK' or 'DE')"),
        (["--region", "Slovakia", "0900123456", "hi"], "region", "must be an ISO 3166 alpha-2 country code, not 'Slovakia': did you mean 'SK'?"),
        (
            ["--region", "DE", "0900123456", "hi"],
            "to",
            "'0900123456' is not a valid number in its numbering plan (read as a national number of DE, from the region given)",
        ),
        (["--region", "SK", "+999123456", "hi"], "to", "'+999123456' has an unknown country calling code"),
    ],
    ids=["a region that is no country, with a + number", "a country's name", "a number the region given does not have", "a + number with a region"],
)
@SQLITE_ONLY
def test_an_error_blames_the_field_that_is_wrong(settings_for, redis_client, args, field, reason):
    result = cli("send", *args, "--json", env=process_env(settings_for()))

    assert (result.returncode, json.loads(result.stdout)) == (2, {"error": {"field": field, "reason": reason}})


@SQLITE_ONLY
def test_a_region_in_lower_case_reads_a_national_number(settings_for, redis_client):
    env = process_env(settings_for())

    sent = cli("send", "--region", "sk", "0900123456", "hi", "--json", env=env)

    assert sent.returncode == 0, sent.stdout + sent.stderr
    shown = json.loads(cli("status", json.loads(sent.stdout)["id"], "--json", env=env).stdout)
    assert shown["message"]["recipient"] == "+42190****456"


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        (["send", "--json"], "to", "Missing argument 'TO'."),
        (["send", "--json", "--bogus", "1", "+421900123456", "hi"], "usage", "No such option '--bogus'."),
        (["status", "--json"], "id", "Missing argument 'ID'."),
        (["segments", "--json"], "text", "Missing argument 'TEXT'."),
        (["status", "--json", "x", "--wait", "soon"], "--wait", "Invalid value for '--wait': 'soon' is not a valid float range."),
        (["stats", "--json", "extra"], "usage", "Got unexpected extra argument (extra)"),
    ],
    ids=["a missing argument", "an unknown option", "status without an id", "segments without a text", "a bad option value", "an extra argument"],
)
def test_with_json_every_usage_error_is_json_on_stdout(args, field, reason):
    result = cli(*args)

    assert result.returncode == 2
    assert result.stderr == ""
    error = json.loads(result.stdout)["error"]
    assert (error["field"], error["reason"]) == (field, reason)
    assert error["usage"].startswith(f"Usage: sms-worker {args[0]} [OPTIONS]")


SECONDS_LIST = "seconds (one or more, none negative) separated by commas, e.g. 30,120,300, or a JSON list, e.g. [30,120,300]"
REDIS_URL_FORMS = "must be a Redis URL: redis://HOST:6379/0, rediss://HOST:6379/0 (TLS) or unix:///PATH/redis.sock"
LISTEN_ADDRESS = "must be an IP address or a host name to listen on, such as 127.0.0.1 or 0.0.0.0 (no scheme, port or path)"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SMS_WORKER_MAX_SEGMENTS", "abc", "Input should be a valid integer, unable to parse string as an integer (got 'abc')"),
        ("SMS_WORKER_ON_AMBIGUOUS", "never-ever", "Input should be 'resend' or 'give-up' (got 'never-ever')"),
        ("SMS_WORKER_DATABASE_URL", "postgres://x", "say postgresql://, not postgres:// (SQLAlchemy knows PostgreSQL only by its full name)"),
        ("SMS_WORKER_DATABASE_URL", "mysql://u:secret@x/y", "'mysql' is not supported: give a postgresql:// or a sqlite:/// URL"),
        ("SMS_WORKER_BATCH_SIZE", "0", "Input should be greater than or equal to 1 (got '0')"),
        ("SMS_WORKER_RETRY_BACKOFF_SECONDS", "30;120", f"must be {SECONDS_LIST} (got '30;120')"),
        ("SMS_WORKER_REDIS_URL", "localhost:6379", REDIS_URL_FORMS),
    ],
    ids=["not a number", "not a policy", "postgres://", "another database, its password not repeated", "out of range", "a list", "a Redis URL"],
)
def test_a_bad_setting_is_named_with_the_reason(tmp_path, variable, value, reason):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path), variable: value}

    result = cli("send", "+421900123456", "hi", env=env)
    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, f"error: {variable}: {reason}", "")
    shown = cli("stats", "--json", env=env)
    assert (shown.returncode, json.loads(shown.stdout)) == (2, {"error": {"field": variable, "reason": reason}})


@pytest.mark.parametrize("command", [["stats"], ["worker"], ["scheduler"], ["accounts"], ["callbacks"], ["flower"], ["db", "upgrade"]], ids=" ".join)
def test_a_bad_setting_is_named_by_every_command(tmp_path, command):
    """Every command reads its settings through one path (Command.invoke): each says the same
    line; test_a_bad_setting_is_named_with_the_reason covers the kinds of bad value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {
        "SMS_WORKER_HOME": str(tmp_path),
        "SMS_WORKER_MAX_SEGMENTS": "abc",
    }

    result = cli(*command, env=env)

    reason = "Input should be a valid integer, unable to parse string as an integer (got 'abc')"
    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, f"error: SMS_WORKER_MAX_SEGMENTS: {reason}", "")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("SMS_WORKER_STATUS_CHECK_DELAYS_SECONDS=[1, -2]", f"must be {SECONDS_LIST} (got '[1, -2]')"),
        ("SMS_WORKER_REDIS_URL=127.0.0.1", REDIS_URL_FORMS),
        ("SMS_WORKER_CALLBACK_HOST=http://0.0.0.0", f"{LISTEN_ADDRESS} (got 'http://0.0.0.0')"),
        ("SMS_WORKER_SANDBOX_PORT=70000", "Input should be less than or equal to 65535 (got '70000')"),
        ("SMS_WORKER_TELEKOM_SK_URL=127.0.0.1:8025/telekom-sk", "must be an http(s) URL such as 'https://api.example.com/v1'"),
    ],
    ids=["a list", "a Redis URL", "an address to listen on", "a port", "Telekom SK's URL"],
)
def test_a_bad_setting_in_dot_env_is_named_with_the_reason(tmp_path, line, reason):
    """The same checks for each setting of a kind (lists, URLs, addresses, ports), read from a .env file."""
    (tmp_path / ".env").write_text(f"# copied from .env.example\n{line}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path)}

    result = cli("stats", env=env, cwd=tmp_path)

    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, f"error: {line.partition('=')[0]}: {reason}", "")


@pytest.mark.parametrize("value", ["30,120", " 30, 120 ", "[30,120]"], ids=["commas", "commas and spaces", "JSON"])
@SQLITE_ONLY
def test_a_list_setting_is_read_from_commas_or_json(settings_for, redis_client, monkeypatch, value):
    result = cli("stats", env=process_env(settings_for(), SMS_WORKER_RETRY_BACKOFF_SECONDS=value))
    assert (result.returncode, result.stderr) == (0, "")

    monkeypatch.setenv("SMS_WORKER_RETRY_BACKOFF_SECONDS", value)
    assert Settings().retry_backoff_seconds == (30, 120)


@SQLITE_ONLY
def test_a_variable_that_is_no_setting_is_warned_of_naming_the_setting_meant(settings_for, redis_client, tmp_path):
    """A typo is not silently ignored, in the environment or .env; the deprecated names still
    read, the tests' own variables and a providers file's credential variables are no typos."""
    path = tmp_path / "providers.toml"
    path.write_text(
        '[accounts.x]\ntype = "session-key"\nbase_url = "http://127.0.0.1:9/session-key"\nusername = "u"\n'
        'password_env = "SMS_WORKER_SESSION_KEY_PASSWORD"\nquality = "N"\n'
    )
    (tmp_path / ".env").write_text("SMS_WORKER_REDIS_ULR=redis://127.0.0.1:9/0\nSMS_WORKER_COLOUR=blue\n")
    extra = {"SMS_WORKER_MAX_PARTS": "3", "SMS_WORKER_RETRY_AMBIGUOUS": "never", "SMS_WORKER_TEST_MARK": "1", "SMS_WORKER_SESSION_KEY_PASSWORD": "p"}
    env = process_env(settings_for(providers_file=path), SMS_WORKER_BACH_SIZE="10", **extra)

    result = cli("accounts", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(warnings_of_unknown(result.stderr)) == [
        "SMS_WORKER_BACH_SIZE (in the environment) is not a setting and is ignored: did you mean SMS_WORKER_BATCH_SIZE?",
        "SMS_WORKER_COLOUR (in .env) is not a setting and is ignored",
        "SMS_WORKER_REDIS_ULR (in .env) is not a setting and is ignored: did you mean SMS_WORKER_REDIS_URL?",
    ]


def test_a_long_running_process_warns_of_a_variable_that_is_no_setting_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path), "SMS_WORKER_BACH_SIZE": "10"}

    for process in ("worker", "scheduler"):
        result = cli(process, env=env)  # stops at start: the database is not migrated

        assert result.returncode == 2, process
        assert warnings_of_unknown(result.stderr) == [
            "SMS_WORKER_BACH_SIZE (in the environment) is not a setting and is ignored: did you mean SMS_WORKER_BATCH_SIZE?"
        ], process


def warnings_of_unknown(stderr: str) -> list[str]:
    """The warnings of variables that are no setting, in ``stderr``, without the log's time."""
    return [line.partition(" WARNING sms_worker.config: ")[2] for line in stderr.splitlines() if " WARNING sms_worker.config: " in line]


def test_an_address_or_port_to_listen_on_that_cannot_be_is_a_usage_error():
    for args, message in (
        (["sandbox", "--port", "70000"], "Error: Invalid value for '--port': 70000 is not in the range 1<=x<=65535."),
        (["callbacks", "--host", "http://0.0.0.0"], f"Error: Invalid value for '--host': 'http://0.0.0.0' {LISTEN_ADDRESS}"),
    ):
        result = cli(*args)
        assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (2, message), args
        assert "Traceback" not in result.stderr


def test_a_downgrade_to_no_such_revision_names_the_revisions_there_are(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path)}
    assert cli("db", "upgrade", env=env).returncode == 0
    revisions = ", ".join(f"{number:04d}" for number in range(1, int(latest_revision()) + 1))

    unknown = cli("db", "downgrade", "zzz", env=env)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        f"error: revision: Can't locate revision identified by 'zzz' (this version's revisions: {revisions}, or base)",
    )

    assert cli("db", "downgrade", "0002", env=env).returncode == 0
    above = cli("db", "downgrade", latest_revision(), env=env)
    assert (above.returncode, above.stderr.strip()) == (
        2,
        f"error: revision: Destination {latest_revision()} is not a valid downgrade target from current head(s) "
        f"(this version's revisions: {revisions}, or base)",
    )


@SQLITE_ONLY
def test_a_database_that_is_down_is_said_in_one_line_by_every_command(settings_for, redis_client):
    env = process_env(settings_for(database_url="postgresql://postgres@127.0.0.1:9/nowhere"))

    for command in (["stats"], ["status", "27d3680a-6a69-4a14-9571-345457d7ae74"], ["send", "+421900123456", "hi"]):
        result = cli(*command, env=env)
        assert result.returncode == 3, command
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert errors and errors[0].startswith("error: database: unreachable (connection failed:"), (command, result.stderr)
        assert "Traceback" not in result.stderr, command


BAD_OPTION = '[accounts.x]\ntype = "dexatel"\nbase_url = "http://127.0.0.1:9/dexatel"\napi_key = "k"\ndefault_sender = "ACME"\nrat = 30\n'
"""A providers file with a misspelt option (``rat`` for ``rate``)."""


@pytest.mark.parametrize(
    ("providers", "redis", "reason"),
    [
        (BAD_OPTION, "up", UNKNOWN_KEYS[0][1]),
        (BAD_OPTION, "not started", UNKNOWN_KEYS[0][1]),
        (None, "not started", "cannot be read (No such file or directory)"),
    ],
    ids=["bad option, Redis up", "bad option, embedded Redis not started", "no such file, embedded Redis not started"],
)
@pytest.mark.parametrize("process", ["worker", "scheduler", "callbacks"])
@SQLITE_ONLY
def test_every_process_stops_at_start_on_a_bad_providers_file(settings_for, redis_client, tmp_path, process, providers, redis, reason):
    """Before it waits for Redis and before it says it runs: under the embedded defaults with no
    ``sms-worker redis`` yet, a process that waited first would say only "waiting for Redis" for
    SMS_WORKER_REDIS_WAIT_SECONDS, then blame Redis (exit 3)."""
    path = tmp_path / "providers.toml"
    if providers is not None:
        path.write_text(providers)
    redis_settings = {} if redis == "up" else {"redis_url": None, "redis_wait_seconds": 30}
    env = process_env(settings_for(providers_file=path, **redis_settings), SMS_WORKER_CALLBACK_TOKEN="a-token")

    result = cli(process, env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "waiting for Redis" not in result.stderr and "running" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: SMS_WORKER_PROVIDERS_FILE: {path}: {reason}") or line.startswith(
        f"error: SMS_WORKER_PROVIDERS_FILE: providers file {path}: {reason}"
    ), line


def test_python_reads_back_what_became_of_a_message_as_status_shows_it(settings_for, redis_client):
    env = process_env(settings_for())
    program = (
        "import json, sms_worker\n"
        "message_id = sms_worker.send_sms('+421900123456', 'read me back', priority='high')\n"
        "found = sms_worker.message_status(message_id)\n"
        "print(json.dumps({'id': str(message_id), 'message': found.message, 'events': found.events}, default=str))\n"
        "print(sms_worker.message_status('00000000-0000-0000-0000-000000000000'))\n"
        "try:\n    sms_worker.message_status('not-an-id')\nexcept sms_worker.InvalidField as error:\n    print(error)\n"
    )

    done = run_python("-c", program, env=env)

    assert done.returncode == 0, done.stderr
    read, missing, refused = done.stdout.splitlines()
    found = json.loads(read)
    assert (found["message"]["status"], found["message"]["priority"], found["message"]["recipient"]) == ("queued", "high", "+42190****456")
    assert found == json.loads(cli("status", found["id"], "--json", env=env).stdout) | {"id": found["id"]}
    assert (missing, refused) == ("None", "id: 'not-an-id' is not a message id")


NOT_MIGRATED_COMMANDS = (
    ["stats"],
    ["status", "27d3680a-6a69-4a14-9571-345457d7ae74"],
    ["send", "+421900123456", "hi"],
    ["worker"],
    ["scheduler"],
    ["callbacks"],
)
PYTHON_API_CALLS = (
    "import sms_worker\n"
    "calls = {\n"
    "    'send_sms': lambda: sms_worker.send_sms('+421900123456', 'hi'),\n"
    "    'send_many': lambda: sms_worker.send_many([{'to': '+421900123456', 'text': 'hi'}]),\n"
    "    'message_status': lambda: sms_worker.message_status('27d3680a-6a69-4a14-9571-345457d7ae74'),\n"
    "}\n"
    "for name, call in calls.items():\n"
    "    try:\n"
    "        call()\n"
    "    except sms_worker.NotMigrated as error:\n"
    "        print(f'{name}: {error}')\n"
)
"""Each call of the Python API that reads or writes messages, printing what NotMigrated says."""


def not_migrated_env(database_url: str, tmp_path: Path, redis_url: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {
        "SMS_WORKER_HOME": str(tmp_path),
        "SMS_WORKER_DATABASE_URL": database_url,
        "SMS_WORKER_REDIS_URL": redis_url,
        "SMS_WORKER_CALLBACK_TOKEN": "a-token",
    }


def assert_said_not_migrated_everywhere(env: dict[str, str], reason: str) -> None:
    """Every command that reads or writes messages exits 2 saying ``error: database: REASON``,
    alone on stderr (no traceback, no warning before it), and the Python API raises
    NotMigrated saying the same."""
    for command in NOT_MIGRATED_COMMANDS:
        result = cli(*command, env=env)
        assert (result.returncode, result.stderr.strip()) == (2, f"error: database: {reason}"), command
    done = run_python("-c", PYTHON_API_CALLS, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{call}: {reason}" for call in ("send_sms", "send_many", "message_status")]


def test_a_database_not_migrated_is_said_once_with_the_command_that_fixes_it(empty_database_url, tmp_path, redis_url):
    env = not_migrated_env(empty_database_url, tmp_path, redis_url)

    assert_said_not_migrated_everywhere(env, f"not migrated (empty, this version needs {latest_revision()}): run `sms-worker db upgrade`")

    assert cli("db", "upgrade", env=env).returncode == 0
    sent = cli("send", "+421900123456", "hi", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    assert cli("status", json.loads(sent.stdout)["id"], env=env).returncode == 0


def test_a_database_an_earlier_release_migrated_is_said_not_migrated_with_the_command_that_fixes_it(empty_database_url, tmp_path, redis_url):
    env = not_migrated_env(empty_database_url, tmp_path, redis_url)
    needed = latest_revision()
    earlier = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(needed).down_revision
    assert cli("db", "upgrade", env=env).returncode == 0
    assert cli("db", "downgrade", str(earlier), env=env).returncode == 0

    assert_said_not_migrated_everywhere(env, f"not migrated (at revision {earlier}, this version needs {needed}): run `sms-worker db upgrade`")

    assert cli("db", "upgrade", env=env).returncode == 0
    assert cli("send", "+421900123456", "hi", env=env).returncode == 0


@SQLITE_ONLY
def test_commands_that_dispatch_nothing_say_one_line_and_no_lease_when_the_database_is_away(settings_for, redis_client):
    """``stats`` and ``accounts`` take no worker lease, so they have none to end on a database
    that is away (they used to warn first that they could not end it); ``accounts`` does not
    need the database at all."""
    env = process_env(settings_for(database_url="postgresql://postgres@127.0.0.1:9/nowhere"))

    stats = cli("stats", env=env)
    assert stats.returncode == 3
    [line] = stats.stderr.strip().splitlines()
    assert line.startswith("error: database: unreachable (connection failed:"), stats.stderr
    for command in (["accounts"], ["accounts", "resume", "telekom-sk"]):
        result = cli(*command, env=env)
        assert (result.returncode, result.stderr) == (0, ""), command


def redis_servers_under(directory: Path) -> list[int]:
    """The redis-server processes whose data directory is under ``directory``: the working
    directory it changes to (``--dir``), for it rewrites its command line to its address."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if words and words[0].split(b" ")[0].endswith(b"redis-server") and cwd.startswith(str(directory)):
            found.append(int(entry.name))
    return found


def test_short_commands_leave_no_redis_behind_and_one_home_per_user_holds_the_queue(tmp_path):
    user_home = tmp_path / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMS_WORKER_", "XDG_"))} | {"HOME": str(user_home)}
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()

    assert cli("db", "upgrade", env=env, cwd=here).returncode == 0
    sent = cli("send", "+421900123456", "kept on disk", "--json", env=env, cwd=here)
    assert sent.returncode == 0, sent.stderr
    assert redis_servers_under(user_home) == [], "send left its Redis running"

    shown = cli("stats", "--json", env=env, cwd=there)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ready"]["standard"] == 1, "the queue is the one send wrote, in the same home"
    assert cli("status", json.loads(sent.stdout)["id"], env=env, cwd=there).returncode == 0
    assert redis_servers_under(user_home) == [], "stats left its Redis running"
    assert (user_home / ".local" / "share" / "sms_worker" / "sms_worker.db").exists()
    assert not (here / ".sms_worker").exists() and not (there / ".sms_worker").exists()


SEND_FROM_PYTHON = "import sms_worker\nprint(sms_worker.send_sms('+421900123456', 'sent from Python'))"


def test_a_python_program_stops_the_embedded_redis_it_started_and_what_it_queued_waits_on_disk(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path / "home")}
    assert cli("db", "upgrade", env=env).returncode == 0

    done = run_python("-c", SEND_FROM_PYTHON, env=env)

    assert done.returncode == 0, done.stderr
    left = redis_servers_under(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    assert left == [], "the program left its Redis running"
    shown = cli("stats", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ready"]["standard"] == 1, "the message waits in the append-only file for the stack"


def test_a_python_program_leaves_the_redis_lines_server_running(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(home)}
    assert cli("db", "upgrade", env=env).returncode == 0
    line = subprocess.Popen([PYTHON, "-m", "sms_worker.cli", "redis"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (home / "redis.url").exists(), 15, 0.05, "the redis line to publish its server")
        server = int((home / "redis.pid").read_text())

        done = run_python("-c", SEND_FROM_PYTHON, env=env)

        assert done.returncode == 0, done.stderr
        assert alive(server), "the program stopped the redis line's server"
        assert json.loads(cli("stats", "--json", env=env).stdout)["ready"]["standard"] == 1
    finally:
        line.terminate()
        line.wait(15)


def test_help_lists_every_command_and_what_send_takes():
    shown = cli("--help")
    assert shown.returncode == 0
    listed = re.findall(r"^  (\S+)\s+\S", shown.stdout.partition("Commands:")[2], re.M)
    assert listed == [
        "redis",
        "worker",
        "scheduler",
        "sandbox",
        "callbacks",
        "flower",
        "send",
        "status",
        "accounts",
        "stats",
        "segments",
        "demo",
        "db",
    ]

    send = cli("send", "--help")
    assert send.returncode == 0
    words = " ".join(send.stdout.split())
    assert "Usage: sms-worker send [OPTIONS] TO TEXT" in words
    for option in (
        "--account NAME",
        "--sender ID",
        "--priority LEVEL",
        "--validity MINUTES",
        "--send-at TIME",
        "--idempotency-key KEY",
        "--unicode",
        "--json",
    ):
        assert option in words, option
    assert "[default: standard]" in words
    assert "Examples: sms-worker send +421900123456" in words


def test_no_command_shows_the_help_and_exits_2():
    result = cli()
    assert result.returncode == 2
    assert "Commands:" in result.stdout


DEPRECATED_PROVIDERS = "warning: 'sms-worker providers' is deprecated, use 'sms-worker accounts' (it will be removed in 0.3)"
DEPRECATED_PROVIDER = "warning: --provider is deprecated, use --account (it will be removed in 0.3)"


@SQLITE_ONLY
def test_the_former_providers_group_does_what_accounts_does_and_warns(sandbox, settings_for, tmp_path):
    env = two_accounts_env(sandbox, settings_for, tmp_path)

    for args in (["--json"], ["check"], ["check", "sk", "--json"], ["resume", "sk"], ["resume", "nope"], ["--json", "resume", "nope"]):
        current, former = cli("accounts", *args, env=env), cli("providers", *args, env=env)
        assert (former.returncode, former.stdout) == (current.returncode, current.stdout), args
        assert former.stderr.splitlines()[0] == DEPRECATED_PROVIDERS, args
        assert "deprecated" not in current.stderr, args


@SQLITE_ONLY
def test_send_reads_a_national_number_with_region(settings_for, redis_client):
    env = process_env(settings_for())
    without = cli("send", "0900 123 456", "hello", "--json", env=env)
    assert without.returncode == 2 and "--region SK" in json.loads(without.stdout)["error"]["reason"]
    sent = cli("send", "--region", "SK", "0900 123 456", "hello", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    shown = json.loads(cli("status", json.loads(sent.stdout)["id"], "--json", env=env).stdout)
    assert shown["message"]["recipient"] == "+42190****456"
    wrong = cli("send", "--region", "Slovakia", "0900 123 456", "hello", "--json", env=env)
    assert (wrong.returncode, json.loads(wrong.stdout)["error"]["field"]) == (2, "region")


@SQLITE_ONLY
def test_stats_and_the_processes_warn_when_redis_may_evict_keys(settings_for, redis_client, caplog):
    from sms_worker.eviction import warn_if_redis_evicts

    env = process_env(settings_for())
    assert "WARNING" not in cli("stats", env=env).stdout, "noeviction: nothing to say"
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        shown = cli("stats", env=env).stdout
        found = json.loads(cli("stats", "--json", env=env).stdout)
        with caplog.at_level("WARNING", logger="sms_worker.redis"):
            warn_if_redis_evicts(redis_client)
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert "WARNING: Redis may evict keys (maxmemory-policy allkeys-lru)" in shown
    assert found["redis_eviction"].startswith("Redis may evict keys (maxmemory-policy allkeys-lru)")
    assert [r.getMessage() for r in caplog.records] == [found["redis_eviction"]]


@SQLITE_ONLY
def test_send_takes_an_account_and_the_deprecated_provider_with_a_warning(settings_for, redis_client):
    env = process_env(settings_for())

    sent = cli("send", "+421900123456", "hello", "--account", "telekom-sk", "--json", env=env)
    assert sent.returncode == 0 and "deprecated" not in sent.stderr
    former = cli("send", "+421900123456", "hello", "--provider", "telekom-sk", "--json", env=env)
    assert former.returncode == 0
    assert former.stderr.splitlines()[0] == DEPRECATED_PROVIDER
    for option in ("--account", "--provider"):
        refused = cli("send", "+421900123456", "hello", option, "nope", "--json", env=env)
        assert refused.returncode == 2
        assert json.loads(refused.stdout)["error"]["reason"].startswith("'nope' is not a configured account"), option
    both = cli("send", "+421900123456", "hello", "--provider", "telekom-sk", "--account", "telekom-sk", env=env)
    assert both.returncode == 2 and "give --account only" in both.stderr
    assert json.loads(cli("stats", "--json", env=env).stdout)["statuses"] == {"queued": 2}


@SQLITE_ONLY
def test_a_text_beginning_with_a_dash_is_the_text_not_an_option(settings_for, redis_client):
    assert segments("-hello")["segment_texts"] == ["-hello"]
    assert segments("--hello")["segment_texts"] == ["--hello"]
    env = process_env(settings_for())

    for args in (
        ["+421900000001", "-5 % off today", "--json"],
        ["--json", "+421900000001", "-5 % off today"],
        ["--json", "--", "+421900000001", "-5 % off today"],
    ):
        sent = cli("send", *args, env=env)
        assert sent.returncode == 0, (args, sent.stderr)
        shown = json.loads(cli("status", json.loads(sent.stdout)["id"], "--json", env=env).stdout)
        assert shown["message"]["text"] == "-5 % off today"


@SQLITE_ONLY
def test_an_unknown_option_outside_the_text_is_still_reported(settings_for):
    env = process_env(settings_for())
    for unknown, args in (
        ("--jsn", ["send", "+421900000001", "hello", "--jsn"]),
        ("-x", ["send", "-x", "+421900000001", "hello"]),
        ("--jsn", ["segments", "hello", "--jsn"]),
    ):
        result = cli(*args, env=env)
        assert result.returncode == 2, args
        assert "No such option" in result.stderr and unknown in result.stderr, args
    assert json.loads(cli("stats", "--json", env=env).stdout)["statuses"] == {}, "nothing was sent"
