"""Whether a text (or a sender) a provider lists may be one of ours that it rewrote on the way in.

Providers rewrite what they are sent: they trim and collapse spaces, normalise Unicode, fold
letters into GSM-7 (Telekom SK's ``unicode=false`` strips diacritics), replace typographic
quotes. A listed copy whose text differs from ours only so is a *near match*: it may be our
message, so after an ambiguous attempt it must be treated as "may have it", never as "has not"
(:mod:`sms_worker.dispatch.lookup`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from unidecode import unidecode

_SPACES: Final = re.compile(r"\s+")


def comparable(text: str) -> str:
    """``text`` as it compares after any such rewriting: NFKC, transliterated to ASCII
    (diacritics, quotes, dashes), case-folded, runs of whitespace made one space, trimmed."""
    return _SPACES.sub(" ", unidecode(unicodedata.normalize("NFKC", text)).casefold()).strip()


def alike(listed: str, ours: str) -> bool:
    """True if ``listed`` is ``ours``, or may be it rewritten by the provider (a text, a sender)."""
    return listed == ours or comparable(listed) == comparable(ours)
