"""Checks a message request before anything is written, with a reason a caller can act on."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumber, ValidationResult

from sms_worker.addresses import alphanumeric_sender_problem, country_code
from sms_worker.errors import InvalidField, SmsWorkerError
from sms_worker.lifecycle.ambiguity import POLICIES

MIN_VALIDITY_MINUTES, MAX_VALIDITY_MINUTES = 1, 1440
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 .&_\-]{1,11}", re.ASCII)
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{3,15}", re.ASCII)
_WRITTEN_NUMBER = re.compile(r"\+?[0-9 ()./\-]+", re.ASCII)
"""A phone number as people write it: digits, a leading +, and the separators space ( ) . / -."""
_EXTENSION = re.compile(r"(?i)(ext\.?|extension|x|#|;ext=)\s*[0-9]+\s*$")
_SCIENTIFIC = re.compile(r"[0-9](\.[0-9]+)?[eE][+-]?[0-9]+", re.ASCII)
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short for its country",
    ValidationResult.TOO_LONG: "too long for its country",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
}
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country calling code (a national number needs a region: region='SK', or send --region SK)",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}


class BatchRejected(SmsWorkerError, ValueError):
    """Some messages of a batch are invalid; nothing of the batch was written."""

    def __init__(self, errors: list[InvalidField]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} invalid message(s), none written: {shown}{more}")


def normalize_recipient(raw: object, default_region: str | None = None) -> str:
    """E.164 out. Bare digits are read as international (Telekom SK's ``421...`` form) unless
    ``default_region`` (an ISO country code) says how to read a national number.

    The text is normalised before any rule runs (:func:`plain_text`): invisible format characters
    (a byte-order mark, zero-width spaces, direction marks) are dropped, and Unicode digits and
    compatibility forms (full-width ``＋１``) become ASCII. Then the whole of it must be a number as
    people write it: digits, a leading ``+`` and the separators space ( ) . / -. Letters (a
    vanity number, ``+421 900 CALL ME``) and extensions (``ext. 12``) are refused, never turned
    into digits or dropped. Raises :class:`InvalidField` for ``to``."""
    if default_region is not None:
        default_region = _region(default_region)
    if isinstance(raw, bool) or not isinstance(raw, str):
        raise InvalidField("to", _not_text_reason(raw))
    text = (raw if raw.isascii() else plain_text(raw)).strip()
    if not text:
        raise InvalidField("to", "a phone number is required")
    if _SCIENTIFIC.fullmatch(text):
        raise InvalidField(
            "to", f"{raw!r} is a number in scientific notation (as a spreadsheet exports it): digits may be lost; export the column as text"
        )
    if not _WRITTEN_NUMBER.fullmatch(text):
        raise InvalidField("to", f"{raw!r} {_written_number_refusal(text)}")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text[0].isdigit() and default_region is None:
        text = "+" + text
    fast = _valid_international(text)
    if fast is not None:
        return fast
    national = default_region if text[0].isdigit() else None
    read_as = f" (read as a national number of {national}, from the region given)" if national else ""
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "is not a phone number")
        if default_region is not None and exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            reason = "has an unknown country calling code"
        raise InvalidField("to", f"{raw!r} {reason}{read_as}") from None
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number)
        if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            raise InvalidField("to", f"{raw!r} is {_POSSIBLE_REASONS.get(possible, 'not a possible number')}{read_as}")
        raise InvalidField("to", f"{raw!r} is not a valid number in its numbering plan{read_as}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _region(region: object) -> str:
    """``region`` as :func:`~sms_worker.addresses.country_code` has it, whatever number it is
    given with (a ``+`` number does not need one, but a wrong one is still a mistake)."""
    if not isinstance(region, str):
        raise InvalidField("region", f"must be an ISO 3166 alpha-2 country code, not {type(region).__name__} {region!r}")
    try:
        return country_code(region)
    except ValueError as error:
        raise InvalidField("region", str(error)) from None


def _valid_international(text: str) -> str | None:
    """Already E.164 and valid: skip the full parser, which costs most of a bulk enqueue.

    Anything unusual (separators, a national number starting with 0) takes the full path.
    """
    if not _E164.fullmatch(text):
        return None
    digits = text[1:]
    for length in (1, 2, 3):
        country = int(digits[:length])
        if country in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            if national.startswith("0"):
                return None
            number = PhoneNumber(country_code=country, national_number=int(national))
            return text if phonenumbers.is_valid_number(number) else None
    return None


def validate_sender(sender: object) -> str | None:
    """A sender ID is a phone number or at most 11 alphanumeric characters (GSM 03.40 TP-OA),
    with a letter or digit and no space at either end
    (:func:`~sms_worker.addresses.alphanumeric_sender_problem`, which says why); None or ``""``:
    the account's default. Raises :class:`InvalidField` for ``sender``."""
    if sender is None or sender == "":
        return None
    if not isinstance(sender, str):
        raise InvalidField("sender", "must be a string")
    digits = sender.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if not _NUMERIC_SENDER.fullmatch(sender):
            raise InvalidField("sender", f"numeric sender {sender!r} must have 3 to 15 digits")
        return sender
    problem = alphanumeric_sender_problem(sender)
    if problem is not None:
        raise InvalidField("sender", problem)
    if not _ALPHANUMERIC_SENDER.fullmatch(sender):
        if len(sender) > 11:
            raise InvalidField("sender", f"alphanumeric sender {sender!r} is longer than 11 characters")
        raise InvalidField("sender", f"{sender!r} may hold only ASCII letters, digits, space and . & _ -")
    return sender


def plain_text(text: str) -> str:
    """``text`` with Unicode format characters (category Cf: U+FEFF, U+200B, U+200E...) dropped,
    compatibility forms folded (NFKC: full-width ``＋１２`` is ``+12``) and every Unicode decimal
    digit (``٣``, ``३``) written as its ASCII digit: what a spreadsheet or a phone's keyboard
    put in a number field, read as the number it shows."""
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    folded = unicodedata.normalize("NFKC", visible)
    return "".join(str(unicodedata.decimal(c)) if c not in _ASCII_DIGITS and unicodedata.category(c) == "Nd" else c for c in folded)


_ASCII_DIGITS = frozenset("0123456789")


def require_unicode(value: str, field: str) -> str:
    """``value`` if it can be stored and sent: valid Unicode (no unpaired surrogate, which no
    encoding can carry) and no NUL (which PostgreSQL text refuses); else :class:`InvalidField`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidField(field, f"is not valid Unicode: an unpaired surrogate U+{ord(value[error.start]):04X} at position {error.start}") from None
    nul = value.find("\x00")
    if nul >= 0:
        raise InvalidField(field, f"holds a NUL character at position {nul}")
    return value


def _not_text_reason(raw: object) -> str:
    if raw is None:
        return "a phone number is required"
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        kind = "an int" if isinstance(raw, int) else "a float"
        return (
            f"{raw!r} is {kind}, not text: a number type loses a leading + or 00 and any leading zero "
            "(a dataframe column read as numbers); pass phone numbers as strings"
        )
    return f"must be text, not {type(raw).__name__}"


def _written_number_refusal(text: str) -> str:
    extension = _EXTENSION.search(text)
    if extension is not None:
        return f"has an extension ({extension.group(0).strip()!r}): an SMS cannot be sent to an extension; give the number alone"
    if any(c.isalpha() for c in text):
        return "has letters: write the number in digits (letters are not read as a keypad's digits)"
    bad = next((c for c in text if c != "+" and not _WRITTEN_NUMBER.fullmatch(c)), None)
    if bad is None:
        return "has a + after its start: only the first character may be +"
    return f"has {bad!r} (U+{ord(bad):04X}): a number holds only digits, a leading + and the separators space ( ) . / -"


def validate_on_ambiguous(policy: object) -> str | None:
    """``resend``, ``give-up`` or None (the account's policy): :mod:`sms_worker.lifecycle.ambiguity`.
    Raises :class:`InvalidField` for ``on_ambiguous``."""
    if policy is None or (isinstance(policy, str) and policy in POLICIES):
        return policy
    raise InvalidField("on_ambiguous", f"{policy!r} is not a policy: 'resend' (at least once) or 'give-up' (at most once)")


def validate_validity(minutes: object) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidField("validity", f"{minutes!r} is not a whole number of minutes")
    if not MIN_VALIDITY_MINUTES <= minutes <= MAX_VALIDITY_MINUTES:
        raise InvalidField("validity", f"{minutes} minutes is outside {MIN_VALIDITY_MINUTES}-{MAX_VALIDITY_MINUTES}")
    return minutes


def validate_send_at(send_at: object, now: datetime) -> datetime | None:
    if send_at is None:
        return None
    if not isinstance(send_at, datetime):
        raise InvalidField("send_at", f"{send_at!r} is not a datetime")
    if send_at.tzinfo is None:
        raise InvalidField("send_at", "must carry a time zone (naive datetimes are ambiguous)")
    if send_at <= now:
        raise InvalidField("send_at", f"{send_at.isoformat()} is not in the future")
    if send_at > now + timedelta(days=35):
        raise InvalidField("send_at", "may be at most 35 days ahead")
    return send_at.astimezone(UTC)
