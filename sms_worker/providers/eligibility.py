"""What an account can carry, as data: its sender-ID rules and the characters its wire format
can carry. Each account model declares it (:meth:`~sms_worker.providers.schema.AccountBase.eligibility`);
routing asks it (:meth:`~sms_worker.routing.Router.eligible`) at enqueue, so that a message goes
to an account that can carry it or is refused there naming the field, the rule and the account,
and again at dispatch, where an account that cannot carry a message is passed over.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal

from sms_worker.addresses import SenderIdRules, sender_refusal

UNCARRIED_CHARACTER: Final = "UNCARRIED_CHARACTER"
"""The code of a text refusal: the text holds a character the account's wire format cannot carry."""

Field = Literal["sender", "text"]


@dataclass(frozen=True, slots=True)
class TextCharacters:
    """Characters a wire format cannot carry at all, not even escaped: ``forbidden`` finds one,
    ``says`` names the rule and where it comes from."""

    forbidden: re.Pattern[str]
    says: str

    def refusal(self, text: str) -> str | None:
        """Why ``text`` cannot travel in this format (the first offending character and its
        position), or None."""
        found = self.forbidden.search(text)
        if found is None:
            return None
        return f"U+{ord(found.group()):04X} at position {found.start()} cannot be carried: {self.says}"


XML_1_0: Final = TextCharacters(
    re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"),
    "XML 1.0 allows no control character but tab, line feed and carriage return, and neither "
    "U+FFFE nor U+FFFF, even as a character reference (XML 1.0 section 2.2, Char)",
)
"""The characters outside XML 1.0's ``Char`` production. Among them only the form feed (U+000C)
is a GSM-7 character (the extension table's page break, 3GPP 23.038); the others are control
characters or non-characters a UCS-2 text may hold."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why ``account`` cannot carry a message: the message ``field`` at fault, the rule's
    ``code`` (``INVALID_SENDER``, ``SENDER_NOT_VERIFIED``, ``ALPHANUMERIC_SENDER_NOT_ALLOWED``,
    :data:`UNCARRIED_CHARACTER`) and a sentence for people. ``str()`` names the account."""

    account: str
    field: Field
    code: str
    reason: str

    def __str__(self) -> str:
        return f"account {self.account}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Eligibility:
    """What one account can carry. Every part is optional: what is None puts no limit beyond
    sms_worker's own checks at enqueue.

    - ``sender_ids``: the API's sender-ID grammar (its document).
    - ``text``: the characters its wire format cannot carry (XML 1.0 for Telekom SK's XML transport).
    - ``default_sender``: the sender the adapter sends when a message names none; the rules
      below apply to it then.
    - ``senders``: the sender IDs the account may use (a verified list); ``alphanumeric_countries``:
      the destinations (ISO 3166) that take an alphanumeric sender from it
      (:func:`~sms_worker.addresses.sender_refusal`).
    """

    sender_ids: SenderIdRules | None = None
    text: TextCharacters | None = None
    default_sender: str | None = None
    senders: Collection[str] | None = None
    alphanumeric_countries: Collection[str] | None = None

    def refusal(self, account: str, recipient: str, sender: str | None, text: str) -> Refusal | None:
        """Why ``account`` cannot carry ``text`` from ``sender`` (None: its default) to
        ``recipient`` (E.164), or None: the sender first, then the text."""
        sender = sender or self.default_sender
        if sender is not None:
            refused = self.sender_ids.refusal(sender) if self.sender_ids is not None else None
            refused = refused or sender_refusal(sender, recipient, senders=self.senders, alphanumeric_countries=self.alphanumeric_countries)
            if refused is not None:
                return Refusal(account, "sender", refused.code, refused.reason)
        uncarried = self.text.refusal(text) if self.text is not None else None
        if uncarried is not None:
            return Refusal(account, "text", UNCARRIED_CHARACTER, uncarried)
        return None
