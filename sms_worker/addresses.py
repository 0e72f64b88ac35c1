"""What an address says of itself (a recipient's phone number, or a sender ID: the originating and
destination addresses of 3GPP 23.040), for routing and for the adapters' own checks."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import pycountry

SENDER_NOT_VERIFIED = "SENDER_NOT_VERIFIED"
ALPHANUMERIC_SENDER_NOT_ALLOWED = "ALPHANUMERIC_SENDER_NOT_ALLOWED"
INVALID_SENDER = "INVALID_SENDER"


def country_code(value: str) -> str:
    """A destination country as routing knows it: an ISO 3166-1 alpha-2 code that ``phonenumbers``
    has a numbering plan for (the regions a recipient's number can be in), in any letter case;
    returned upper-case. Raises ValueError with the reason; a country's name or alpha-3 code
    (``'Slovakia'``, ``'SVK'``) is told the code it stands for, looked up with ``pycountry``."""
    code = value.upper()
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    try:
        meant = f": did you mean {pycountry.countries.lookup(value.strip()).alpha_2!r}?"
    except LookupError:
        meant = " (such as 'SK' or 'DE')"
    raise ValueError(f"must be an ISO 3166 alpha-2 country code, not {value!r}{meant}")


@dataclass(frozen=True, slots=True)
class SenderRefusal:
    """Why an account may not carry a message from a sender: an error code (one of the three
    above) and a sentence for people."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class SenderGrammar:
    """The sender IDs of one kind (alphanumeric, or a phone number) an API takes: ``pattern``
    must match the whole sender (``fullmatch``; compile it with ``re.ASCII``), ``says`` puts it
    in words for a refusal ("1 to 11 ASCII letters, digits or spaces")."""

    pattern: re.Pattern[str]
    says: str


@dataclass(frozen=True, slots=True)
class SenderIdRules:
    """A provider's sender-ID grammar, as its document (or the adapter's written-down
    assumption) gives it. ``alphanumeric`` and ``numeric`` are the grammars of the two kinds of
    sender (:func:`is_alphanumeric` tells which a sender is); None: that kind is not taken at
    all, and ``source`` says why. ``source`` names where the rule comes from, for the refusal.

    These come on top of sms_worker's own grammar (:func:`sms_worker.validation.validate_sender`,
    3GPP 23.040 TP-OA), which every sender meets before any account's rules are asked."""

    alphanumeric: SenderGrammar | None
    numeric: SenderGrammar | None
    source: str

    def refusal(self, sender: str) -> SenderRefusal | None:
        """Why these rules refuse ``sender`` (code :data:`INVALID_SENDER`), or None. Every API's
        alphanumeric sender is a name first (:func:`alphanumeric_sender_problem`), then what its
        grammar says."""
        kind, grammar = ("alphanumeric", self.alphanumeric) if is_alphanumeric(sender) else ("numeric", self.numeric)
        if grammar is None:
            return SenderRefusal(INVALID_SENDER, f"no {kind} sender ID such as {sender!r} is taken ({self.source})")
        problem = alphanumeric_sender_problem(sender) if kind == "alphanumeric" else None
        if problem is not None:
            return SenderRefusal(INVALID_SENDER, f"{problem} ({self.source})")
        if grammar.pattern.fullmatch(sender):
            return None
        return SenderRefusal(INVALID_SENDER, f"the {kind} sender {sender!r} is not {grammar.says} ({self.source})")

    def accepts(self, sender: str) -> bool:
        """True if :meth:`refusal` has nothing against ``sender`` (a validator for an account's
        ``default_sender``)."""
        return self.refusal(sender) is None

    @property
    def says(self) -> str:
        """Both grammars in words, for an account option that must meet them."""
        kinds = [grammar.says for grammar in (self.alphanumeric, self.numeric) if grammar is not None]
        return ", or ".join(kinds) or "no sender ID"


def sender_refusal(
    sender: str | None, recipient: str, *, senders: Collection[str] | None, alphanumeric_countries: Collection[str] | None
) -> SenderRefusal | None:
    """Why an account with these sender rules may not send from ``sender`` to ``recipient``, or
    None. One policy for routing (which passes such an account over) and for an adapter that
    checks before paying for a refused request. A destination whose country cannot be told is
    not among the allowed countries."""
    if sender is None:
        return None
    if senders is not None and sender not in senders:
        return SenderRefusal(SENDER_NOT_VERIFIED, f"sender {sender!r} is not verified")
    if alphanumeric_countries is not None and is_alphanumeric(sender):
        country = country_of(recipient)
        if country not in alphanumeric_countries:
            towards = country or "this destination"
            return SenderRefusal(ALPHANUMERIC_SENDER_NOT_ALLOWED, f"the alphanumeric sender {sender!r} is not allowed towards {towards}")
    return None


def is_alphanumeric(sender: str) -> bool:
    """A phone number (``+`` and digits) is not; anything with another character is."""
    return not sender.removeprefix("+").isdigit()


def alphanumeric_sender_problem(sender: str) -> str | None:
    """Why ``sender``, an alphanumeric sender ID, names no one, or None: the rule every sender
    of every path meets (a message's, an account's ``default_sender``, ``sender_id`` and
    ``senders``), before any API's own grammar.

    An alphanumeric sender is a name shown on the handset in place of a number (3GPP TS 23.040,
    TP-OA "alphanumeric"), and every document of the set says so: Dexatel's example is
    ``"YourBrand"``, DT A2P's "company name or brand", Telefoon's an "alphanumeric sender name
    (max 11 chars)", the session-key gateway's a "sender Alias (TPOA)", Telekom SK's a "text
    identifier". So it holds at least one letter or digit: spaces, punctuation and separators
    alone (``"   "``, ``"..."``, ``" - "``) name nothing, and no document allows it.

    Space at its start or end is refused, not stripped: a sender is sent, shown, checked against
    an account's verified ``senders`` and compared for an idempotent retry exactly as written, so
    stripping it would send (and verify) another sender than the one asked for, silently; a
    refusal names it, and the caller fixes it once."""
    if not any(character.isascii() and character.isalnum() for character in sender):
        return f"the alphanumeric sender {sender!r} has no letter or digit: a sender ID is a name, not only spaces or punctuation"
    if sender != sender.strip():
        return f"the alphanumeric sender {sender!r} starts or ends with a space: give it without (it is sent as written)"
    return None


@lru_cache(maxsize=65536)
def country_of(recipient: str) -> str | None:
    """ISO 3166 code of an E.164 number's country, or None.

    Most country codes belong to one country, and the code alone says which (a few µs per
    message less at enqueue); shared ones (+1, +7, +44...) need the whole number parsed."""
    digits = recipient.removeprefix("+")
    if not digits.isdigit():
        return None
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length]))
        if regions:
            if len(regions) == 1:
                return _geographic(regions[0])
            break
    try:
        return _geographic(phonenumbers.region_code_for_number(phonenumbers.parse(recipient, None)))
    except phonenumbers.NumberParseException:
        return None


def _geographic(region: str | None) -> str | None:
    """Non-geographic numbers (+800, +882...) have region "001": no country to route by."""
    return region if region and region not in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY) else None
