"""The GSM 03.38 / 3GPP TS 23.038 default alphabet, as data the rest of the package can trust.

The tables are laid out by GSM code so that an encoder (or a reader checking them against the
standard) can index them directly; the sets and regular expressions derived from them are what
the hot paths use, because a C-level regex scan is far cheaper than a Python loop per character.
"""

from __future__ import annotations

import re
from typing import Final

# Index = GSM 7-bit code. 0x1B is ESC (the escape to the extension table), not a character a
# user can type, so it is left out of every set below.
BASIC_TABLE: Final[str] = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(BASIC_TABLE) == 128

ESCAPE_CODE: Final[int] = 0x1B

# GSM code (after ESC) -> character. Only the entries of the default extension table that a
# phone renders; 0x0A is FORM FEED ("page break").
EXTENSION_TABLE: Final[dict[int, str]] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

BASIC_CHARS: Final[frozenset[str]] = frozenset(BASIC_TABLE) - {"\x1b"}
EXTENSION_CHARS: Final[frozenset[str]] = frozenset(EXTENSION_TABLE.values())
GSM7_CHARS: Final[frozenset[str]] = BASIC_CHARS | EXTENSION_CHARS

SEPTETS_SINGLE: Final[int] = 160
# A concatenated segment loses 6 octets (48 bits, ~7 septets) to the User Data Header.
SEPTETS_MULTI: Final[int] = 153


def _char_class(chars: frozenset[str], *, negate: bool) -> re.Pattern[str]:
    body = "".join(re.escape(c) for c in sorted(chars))
    return re.compile(("[^" if negate else "[") + body + "]")


# A match means "this text is not plain basic GSM"; no match is the cheap, common case.
NOT_BASIC_RE: Final[re.Pattern[str]] = _char_class(BASIC_CHARS, negate=True)
# A match is a character that forces the whole message to UCS-2.
NOT_GSM7_RE: Final[re.Pattern[str]] = _char_class(GSM7_CHARS, negate=True)
EXTENSION_RE: Final[re.Pattern[str]] = _char_class(EXTENSION_CHARS, negate=False)


def is_gsm7(text: str) -> bool:
    """True if every character can travel in the GSM default alphabet (basic or extension),
    i.e. the message will not be forced to UCS-2 and so keeps 160/153 characters per segment."""
    return NOT_GSM7_RE.search(text) is None


def septets(text: str) -> int:
    """Septets the text costs in GSM-7; extension characters need an ESC prefix, so two.

    Only meaningful when :func:`is_gsm7` holds.
    """
    return len(text) + len(EXTENSION_RE.findall(text))
