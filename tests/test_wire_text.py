"""Issue 9, kind 1: what was priced is what is sent. With ``unicode=false`` the text is folded
into GSM-7 at enqueue, before pricing, and every account sends that very text: the row's
encoding and segments, and the sandbox's own count of what it received, agree."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sms_worker.dispatch.service import dispatch_batch
from sms_worker.errors import InvalidField
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_sms
from sms_worker.runtime import NoWaker, build_runtime

ACCOUNTS = {
    "dexatel": 'type = "dexatel"\nbase_url = "{url}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"',
    "dt-a2p": 'type = "dt-a2p"\nbase_url = "{url}/dt-a2p"\napi_key = "sandbox-dt-key"\ndefault_sender = "+4915112345678"',
    "session-key": 'type = "session-key"\nbase_url = "{url}/session-key"\nusername = "sandbox-user"\npassword = "sandbox-pass"',
    "telekom-sk": 'type = "telekom-sk"\nbase_url = "{url}/telekom-sk"\ntoken = "sandbox-token"',
}

SLOVAK = (
    "Ďakujeme za Vašu objednávku č. 482133. Balík odovzdáme kuriérovi zajtra ráno; "
    "sledovať ho môžete v aplikácii. Pri otázkach nám napíšte. Pekný deň!"
)


@pytest.fixture
def wire_runtime(settings_for, redis_client, sandbox, tmp_path):
    path = tmp_path / "providers.toml"
    tables = "".join(f"\n[accounts.{name}]\n{table.format(url=sandbox.url)}\nrate = 1000\nburst = 1000\n" for name, table in ACCOUNTS.items())
    path.write_text(f'{tables}\n[routing]\ndefault = {{ "telekom-sk" = 1 }}\n')
    rt = build_runtime(settings_for(providers_file=path), waker=NoWaker())
    yield rt
    rt.close()


def stored(rt, message_id) -> tuple[str, str, int]:
    with rt.engine.connect() as conn:
        row = conn.execute(select(MESSAGES.c.text, MESSAGES.c.encoding, MESSAGES.c.segments).where(MESSAGES.c.id == message_id)).one()
    return row.text, row.encoding, row.segments


def test_the_issue_input_dexatel_receives_the_gsm7_text_it_was_priced_for(wire_runtime, sandbox):
    assert len(SLOVAK) == 146
    with pytest.warns(FutureWarning):
        message_id = send_sms("+421900000102", SLOVAK, unicode=False, provider="dexatel", runtime=wire_runtime)

    dispatch_batch(wire_runtime)

    text, encoding, segments = stored(wire_runtime, message_id)
    assert (encoding, segments) == ("GSM-7", 1)
    [submission] = sandbox.submissions(provider="dexatel")
    assert submission["text"] == text
    assert text.startswith("Dakujeme za Vasu objednavku c. 482133.")
    assert submission["parts"] == segments


@pytest.mark.parametrize("account", ["dt-a2p", "session-key", "telekom-sk"])
def test_every_account_receives_the_folded_text_and_counts_the_stored_segments(wire_runtime, sandbox, account):
    long_text = SLOVAK + " Ďalšia správa čoskoro, ďakujeme."  # 179 characters: 2 GSM-7 segments, 3 in UCS-2
    message_id = send_sms("+421900000103", long_text, unicode=False, account=account, runtime=wire_runtime)

    dispatch_batch(wire_runtime)

    text, encoding, segments = stored(wire_runtime, message_id)
    assert (encoding, segments) == ("GSM-7", 2)
    [submission] = sandbox.submissions(provider=account)
    assert submission["text"] == text
    assert submission["parts"] == segments


def test_a_character_with_no_gsm7_form_is_refused_naming_it(wire_runtime, sandbox):
    with pytest.raises(InvalidField, match=r"text: has '🎉' \(U\+1F389\) with no GSM-7 form"):
        send_sms("+421900000104", "Ďakujeme 🎉", unicode=False, account="dexatel", runtime=wire_runtime)

    with wire_runtime.engine.connect() as conn:
        assert conn.execute(select(MESSAGES.c.id)).all() == []


def test_a_character_outside_the_table_that_transliterates_is_sent_as_priced(wire_runtime, sandbox):
    message_id = send_sms("+421900000105", "Objednávka 北京 prijatá", unicode=False, account="dexatel", runtime=wire_runtime)

    dispatch_batch(wire_runtime)

    text, encoding, segments = stored(wire_runtime, message_id)
    assert encoding == "GSM-7" and "Bei Jing" in text
    [submission] = sandbox.submissions(provider="dexatel")
    assert (submission["text"], submission["parts"]) == (text, segments)


def test_unicode_true_is_priced_as_the_ucs2_telekom_sk_sends(wire_runtime, sandbox):
    text = "Your code is 4821. " * 4  # 76 GSM-7 characters: 1 segment in GSM-7, 2 in UCS-2
    message_id = send_sms("+421900000106", text, unicode=True, account="telekom-sk", runtime=wire_runtime)

    dispatch_batch(wire_runtime)

    assert stored(wire_runtime, message_id) == (text, "UCS-2", 2)
    [submission] = sandbox.submissions(provider="telekom-sk")
    assert (submission["params"]["unicode"], submission["parts"]) == (True, 2)
