"""Fold a text into GSM-7 so it is billed at 160/153 characters per segment instead of 70/67.

This is what ``unicode=false`` means for every account: the producer folds the text once, at
enqueue and before pricing, and stores and sends the folded text, so the encoding, segment count
and rate-limit units recorded are those of the exact text on the wire (Telekom SK's own
``unicode=false``, which strips diacritics likewise, then finds nothing left to change).
Characters that GSM-7 already has (é, ü, Ñ, ß, Greek capitals, €...) are kept, because a
phone shows them correctly and replacing them would only lose information.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from unidecode import unidecode

from sms_worker.text.gsm7 import GSM7_CHARS, NOT_GSM7_RE

# Typographic characters that word processors and phones substitute silently. Explicit entries
# because the generic fallbacks give a worse answer for them (NFKD leaves them alone, and
# unidecode turns « into "<<" and a zero-width space into a visible space).
DOWNGRADE_TABLE: Final[dict[str, str]] = {
    # quotes and apostrophes
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u00b4": "'",
    "`": "'",
    "\u02bc": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    # dashes, hyphens and minus
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    # spaces and line breaks
    "\t": " ",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\u3000": " ",
    "\u2028": "\n",
    "\u2029": "\n",
    "\u0085": "\n",
    # invisible format characters: '?' would add visible noise, so they vanish
    "\u00ad": "",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",
    "\ufeff": "",
    **{chr(c): "" for c in range(0xFE00, 0xFE10)},  # variation selectors (emoji presentation)
}

REPLACEMENT: Final[str] = "?"
"""What :func:`downgrade_to_gsm7` writes for a character that has no GSM-7 form."""

_cache: dict[str, str | None] = {}


@dataclass(frozen=True, slots=True)
class Downgrade:
    """A text folded into GSM-7: ``text`` has :data:`REPLACEMENT` where a character has no GSM-7
    form, and ``unmapped`` names those characters (each once, in order of first appearance)."""

    text: str
    unmapped: tuple[str, ...]


def _fold_char(char: str) -> str | None:
    """GSM-7 replacement for one character that is not in GSM-7; None if it has none."""
    if char in DOWNGRADE_TABLE:
        return DOWNGRADE_TABLE[char]
    if unicodedata.combining(char):
        # A stray combining mark is a diacritic with nothing left to sit on.
        return ""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if stripped and all(c in GSM7_CHARS for c in stripped):
        return stripped
    ascii_ = unidecode(char)  # keeps its spacing: "中文" -> "Zhong Wen "
    if not ascii_.strip():
        return None
    folded = [c if c in GSM7_CHARS else DOWNGRADE_TABLE.get(c) for c in ascii_]
    return None if None in folded else "".join(c for c in folded if c is not None)


def _fold_char_cached(char: str) -> str | None:
    try:
        return _cache[char]
    except KeyError:
        result = _cache[char] = _fold_char(char)
        return result


def downgrade(text: str) -> Downgrade:
    """Rewrite ``text`` so ``analyze(result.text).encoding == "GSM-7"``, losing as little as
    possible, and name the characters that could only be replaced by :data:`REPLACEMENT`
    (an emoji, a symbol with no Latin transliteration).

    The text is NFC-composed first so that a decomposed "e" + U+0301 becomes the GSM-7 "é"
    instead of an "e" followed by a mark that would have to be dropped; likewise the Ohm and
    Angstrom signs become the GSM-7 Ω and Å.
    """
    if NOT_GSM7_RE.search(text) is None:
        return Downgrade(text, ())
    text = unicodedata.normalize("NFC", text)
    unmapped: dict[str, None] = {}

    def fold(match: re.Match[str]) -> str:
        folded = _fold_char_cached(match.group())
        if folded is None:
            unmapped[match.group()] = None
            return REPLACEMENT
        return folded

    return Downgrade(NOT_GSM7_RE.sub(fold, text), tuple(unmapped))


def downgrade_to_gsm7(text: str) -> str:
    """:func:`downgrade`'s text: always GSM-7, with :data:`REPLACEMENT` for what has no GSM-7 form."""
    return downgrade(text).text
