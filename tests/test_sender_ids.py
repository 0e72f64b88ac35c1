"""Issue 15, kind 6b: a sender ID made only of spaces, punctuation or separators names no one,
and one with a space at either end is not the sender it seems: refused on every path (a
message's sender through ``send_sms``, ``send_many`` and ``sms-worker send``; an account's
``default_sender``, ``sender_id`` and ``senders`` in the providers file), with nothing written."""

from __future__ import annotations

import json

import pytest
from conftest import process_env
from forked import run_cli as cli
from sqlalchemy import func, select

from sms_worker.errors import InvalidField
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_many, send_sms
from sms_worker.runtime import Runtime
from sms_worker.validation import BatchRejected

NO_LETTER_OR_DIGIT = "has no letter or digit"
SPACE_AT_AN_END = "starts or ends with a space"
SIBLINGS = {
    "...": NO_LETTER_OR_DIGIT,
    "-": NO_LETTER_OR_DIGIT,
    " - ": NO_LETTER_OR_DIGIT,
    "\t": NO_LETTER_OR_DIGIT,
    "_&_": NO_LETTER_OR_DIGIT,
    " ACME": SPACE_AT_AN_END,
    "ACME ": SPACE_AT_AN_END,
}


def messages_written(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(MESSAGES)).scalar_one()


def test_a_sender_of_three_spaces_is_refused_by_send_sms_and_nothing_is_written(runtime):
    """The issue's input."""
    with pytest.raises(InvalidField) as caught:
        send_sms("+421900123456", "from whom?", sender="   ", runtime=runtime)

    assert caught.value.field == "sender"
    assert NO_LETTER_OR_DIGIT in caught.value.reason
    assert messages_written(runtime) == 0


def test_sms_worker_send_with_a_sender_of_three_spaces_exits_2_naming_the_field_and_writes_nothing(runtime, settings_for):
    env = process_env(settings_for())

    result = cli("send", "+421900123456", "from whom?", "--sender", "   ", "--json", env=env)

    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["field"] == "sender" and NO_LETTER_OR_DIGIT in error["reason"]
    plain = cli("send", "+421900123456", "from whom?", "--sender", "   ", env=env)
    assert plain.returncode == 2 and f"sender: the alphanumeric sender '   ' {NO_LETTER_OR_DIGIT}" in plain.stderr
    assert "Traceback" not in plain.stderr
    assert messages_written(runtime) == 0


@pytest.mark.parametrize("sender", sorted(SIBLINGS))
def test_no_sender_of_punctuation_or_separators_alone_nor_padded_with_spaces_is_taken(runtime, sender):
    with pytest.raises(InvalidField) as caught:
        send_sms("+421900123456", "from whom?", sender=sender, runtime=runtime)
    assert (caught.value.field, SIBLINGS[sender] in caught.value.reason) == ("sender", True)

    with pytest.raises(BatchRejected) as rejected:
        send_many(
            [{"to": "+421900123456", "text": "fine", "sender": "ACME"}, {"to": "+421900123456", "text": "not", "sender": sender}], runtime=runtime
        )
    assert [(error.index, error.field) for error in rejected.value.errors] == [(1, "sender")]

    assert messages_written(runtime) == 0
    assert send_sms("+421900123456", "a name with a space inside is one", sender="A CME", runtime=runtime)


PROVIDERS_FILE_SENDERS = {
    # (account table, the field named in the refusal, the reason)
    "dexatel default_sender of spaces": (
        'type = "dexatel"\nbase_url = "{url}/dexatel"\napi_key = "k"\ndefault_sender = "   "',
        "default_sender",
        NO_LETTER_OR_DIGIT,
    ),
    "dt-a2p default_sender of dashes": (
        'type = "dt-a2p"\nbase_url = "{url}/dt-a2p"\napi_key = "k"\ndefault_sender = "--"',
        "default_sender",
        NO_LETTER_OR_DIGIT,
    ),
    "dt-a2p verified senders with a separator": (
        'type = "dt-a2p"\nbase_url = "{url}/dt-a2p"\napi_key = "k"\ndefault_sender = "ACME"\nsenders = ["ACME", " - "]',
        "senders[1]",
        NO_LETTER_OR_DIGIT,
    ),
    "telefoon default_sender padded": (
        'type = "telefoon"\nbase_url = "{url}/telefoon/v1/sms"\napi_key = "k"\ndefault_sender = " ACME"',
        "default_sender",
        SPACE_AT_AN_END,
    ),
    "telefoon sender_id of dots": (
        'type = "telefoon"\nbase_url = "{url}/telefoon/v1/sms"\napi_key = "k"\ndefault_sender = "ACME"\nsender_id = "..."',
        "sender_id",
        NO_LETTER_OR_DIGIT,
    ),
    "session-key senders with a tab": (
        'type = "session-key"\nbase_url = "{url}/session-key"\nusername = "u"\npassword = "p"\nsenders = ["\\t"]',
        "senders[0]",
        NO_LETTER_OR_DIGIT,
    ),
}


@pytest.mark.parametrize("case", sorted(PROVIDERS_FILE_SENDERS))
def test_a_providers_file_sender_that_names_no_one_stops_the_command_naming_the_field(settings_for, sandbox, tmp_path, case):
    table, field, reason = PROVIDERS_FILE_SENDERS[case]
    path = tmp_path / "providers.toml"
    path.write_text(f"[accounts.x]\n{table.format(url=sandbox.url)}\n")

    result = cli("accounts", env=process_env(settings_for(providers_file=path)))

    assert result.returncode != 0
    assert f"accounts.x.{field}: the alphanumeric sender" in result.stderr and reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
