"""Input checks: every rejection names the field and says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sms_worker.priority import Priority
from sms_worker.validation import (
    InvalidField,
    normalize_recipient,
    validate_send_at,
    validate_sender,
    validate_validity,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+421 900 123 456", None, "+421900123456"),
        ("421900123456", None, "+421900123456"),
        ("00421900123456", None, "+421900123456"),
        ("0900 123 456", "SK", "+421900123456"),
        ("+49 1512 3456789", None, "+4915123456789"),
    ],
)
def test_recipients_come_out_in_e164(raw, region, expected):
    assert normalize_recipient(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "required"),
        ("hello", "has letters"),
        ("+4219001", "too short"),
        ("+42190012345678901", "too long"),
        ("+999123456789", "country calling code"),
        ("+421100123456", "not a valid number"),
    ],
)
def test_bad_recipients_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidField) as caught:
        normalize_recipient(raw)
    assert caught.value.field == "to"
    assert reason in str(caught.value)


def test_sender_ids():
    assert validate_sender("ACME") == "ACME"
    assert validate_sender("+421900123456") == "+421900123456"
    assert validate_sender(None) is None
    with pytest.raises(InvalidField, match="sender: alphanumeric sender 'ACME-PARCELS' is longer than 11"):
        validate_sender("ACME-PARCELS")
    with pytest.raises(InvalidField, match="sender: .* may hold only"):
        validate_sender("ACME!")


def test_priorities_by_name_or_number():
    assert [Priority.parse(p) for p in ("high", "Standard", "low", 3, 2, 1, "3")] == [3, 2, 1, 3, 2, 1, 3]
    for bad in ("urgent", 0, 4, True, None):
        with pytest.raises(InvalidField, match="priority"):
            Priority.parse(bad)


def test_validity_is_between_one_minute_and_a_day():
    assert validate_validity(1) == 1 and validate_validity(1440) == 1440
    for bad in (0, 1441, "10", 2.5):
        with pytest.raises(InvalidField, match="validity"):
            validate_validity(bad)


def test_send_at_must_be_an_aware_future_time():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert validate_send_at(now + timedelta(minutes=1), now) == now + timedelta(minutes=1)
    with pytest.raises(InvalidField, match="send_at: .* is not in the future"):
        validate_send_at(now, now)
    with pytest.raises(InvalidField, match="time zone"):
        validate_send_at(datetime(2030, 1, 2), now)
    with pytest.raises(InvalidField, match="35 days"):
        validate_send_at(now + timedelta(days=36), now)


def test_the_e164_fast_path_agrees_with_the_full_parser():
    import random

    import phonenumbers

    from sms_worker.validation import _valid_international

    samples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is not None:
            samples.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    rng = random.Random(7)
    samples += ["+" + str(rng.randint(10**7, 10**14)) for _ in range(3000)]

    def full_parser(e164: str) -> str | None:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return None
        valid = phonenumbers.is_valid_number(number)
        return e164 if valid and phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164 else None

    assert sum(full_parser(e) is not None for e in samples) > 200
    for e164 in samples:
        expected = full_parser(e164)
        fast = _valid_international(e164)
        assert fast in (None, expected), e164
        if fast is None and expected is not None:
            assert normalize_recipient(e164) == expected


def test_digits_from_other_scripts_come_out_as_ascii():
    assert normalize_recipient("+421９００１２３４５６") == "+421900123456"
    assert normalize_recipient("+٤٢١٩٠٠١٢٣٤٥٦") == "+421900123456"
    assert normalize_recipient("＋４２１ ９００ １２３ ４５６") == "+421900123456", "full-width plus too (NFKC)"


@pytest.mark.parametrize(
    "raw",
    [
        "\ufeff421900000105",  # the input: a byte-order mark, as spreadsheets export it
        "421900000105\ufeff",
        "\u200b+421 900 000 105",  # sibling: a zero-width space
        "+421\u200e900000105",  # sibling: a left-to-right mark inside
        "00421\u2060900000105",  # sibling: a word joiner, then the 00 rule still applies
        "+421\u00a0900\u00a0000\u00a0105",  # sibling: no-break spaces
    ],
)
def test_invisible_characters_are_dropped_before_the_rules_run(raw):
    assert normalize_recipient(raw) == "+421900000105"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+421 900 CALL ME", "has letters"),  # the input
        ("+421 900 000 001 ext. 12", "has an extension ('ext. 12')"),  # the input
        ("+421 900 000 001 x12", "has an extension ('x12')"),  # sibling
        ("+421900000001;ext=12", "has an extension (';ext=12')"),  # sibling: RFC 3966 style
        ("+421 900 ABC 001", "has letters"),  # sibling
        ("421+900000105", "only the first character may be +"),
        ("+421*900000105", "has '*' (U+002A)"),
        ("4.21900000105E+11", "scientific notation"),  # keep: a spreadsheet's float export
        ("+421900000105\nX", "has letters"),
    ],
)
def test_a_number_is_digits_a_plus_and_separators_nothing_else(raw, reason):
    with pytest.raises(InvalidField) as caught:
        normalize_recipient(raw)
    assert caught.value.field == "to" and reason in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (421900000105, "is an int, not text"),  # what a dataframe gives
        (4.21900000105e11, "is a float, not text"),
        (None, "a phone number is required"),
        (True, "must be text, not bool"),
        (b"+421900000105", "must be text, not bytes"),
    ],
)
def test_a_recipient_that_is_not_text_gets_a_reason_that_says_so(raw, reason):
    with pytest.raises(InvalidField) as caught:
        normalize_recipient(raw)
    assert caught.value.reason.endswith(reason) or reason in caught.value.reason


@pytest.mark.parametrize("region", ["sk ", "SVK", 421, "Ｓ Ｋ"])
def test_a_region_must_be_a_two_letter_code(region):
    with pytest.raises(InvalidField) as caught:
        normalize_recipient("0900 123 456", region)
    assert caught.value.field == "region"


@pytest.mark.parametrize(
    "sender",
    [
        "ACME\n",  # the input: a regex ending in $ matched before a final newline
        "１２３４５６",  # the input: full-width digits pass str.isdigit()
        "٤٢١٩٠٠",  # sibling: Arabic-Indic digits
        "ACMÉ",  # sibling: a letter outside ASCII
        "ACME\t",  # sibling: a tab
        "+１２３４",  # sibling: full-width digits after a plus
    ],
)
def test_sender_grammar_is_ascii_and_whole(sender):
    with pytest.raises(InvalidField) as caught:
        validate_sender(sender)
    assert caught.value.field == "sender"


def test_the_settings_old_names_for_segments_still_work_with_a_warning(monkeypatch):
    from sms_worker.config import get_settings, reset_settings

    monkeypatch.setenv("SMS_WORKER_MAX_PARTS", "7")
    monkeypatch.setenv("SMS_WORKER_RATE_LIMIT_UNIT", "parts")
    reset_settings()
    try:
        with pytest.warns(FutureWarning) as warned:
            settings = get_settings()
    finally:
        reset_settings()
    assert (settings.max_segments, settings.rate_limit_unit) == (7, "segments")
    assert {str(w.message).split(" is deprecated")[0] for w in warned} == {"SMS_WORKER_MAX_PARTS", "SMS_WORKER_RATE_LIMIT_UNIT=parts"}
