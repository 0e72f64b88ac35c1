"""What a message will cost and how a phone will receive it, computed before it is sent.

``analyze`` runs once per message during a bulk enqueue (100,000 messages at a time), so it is
shaped around the common case: a short text in basic GSM is answered by one regex scan and
arithmetic. The exact greedy packing is only walked when it can differ from plain division,
i.e. a multipart message that contains two-unit characters (GSM extension characters, or
surrogate pairs in UCS-2), and even then it steps from one such character to the next instead
of visiting every character. ``split_segments`` uses the very same packing, so the segment count the
customer is charged for always equals the number of segments actually sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sms_worker.text.gsm7 import (
    EXTENSION_RE,
    NOT_BASIC_RE,
    NOT_GSM7_RE,
    SEPTETS_MULTI,
    SEPTETS_SINGLE,
)

GSM7: Final[str] = "GSM-7"
UCS2: Final[str] = "UCS-2"

UCS2_SINGLE: Final[int] = 70
# A concatenated segment loses 6 octets to the User Data Header: 134 octets = 67 UTF-16 units.
UCS2_MULTI: Final[int] = 67

# Characters outside the Basic Multilingual Plane become a surrogate pair in UTF-16.
_ASTRAL_RE: Final[re.Pattern[str]] = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    """The cost of a message, so it can be shown, billed and rate-limited in SMS segments.

    ``forced_ucs2`` names the characters that pushed the message out of GSM-7 (and so from
    160/153 down to 70/67 characters per segment), so a user interface can point at them or offer
    :func:`~sms_worker.text.downgrade.downgrade_to_gsm7`.
    """

    encoding: str
    segments: int
    units: int
    per_segment: int
    forced_ucs2: tuple[str, ...]


_EMPTY: Final[TextAnalysis] = TextAnalysis(GSM7, 0, 0, SEPTETS_SINGLE, ())
# Single-segment basic GSM results are identical for a given length; building them once saves the
# frozen-dataclass constructor (about half the cost of the whole call) on the hot path.
_GSM7_SINGLE: Final[tuple[TextAnalysis, ...]] = tuple(TextAnalysis(GSM7, 1 if n else 0, n, SEPTETS_SINGLE, ()) for n in range(SEPTETS_SINGLE + 1))


def _segment_ends(length: int, doubles: list[int], limit: int) -> list[int]:
    """End index (exclusive) of each segment under greedy packing.

    ``doubles`` are the sorted indices of characters that cost two units and must not be cut
    in half (an ESC pair, a surrogate pair). Single-unit runs between them are consumed with
    arithmetic, so the cost is O(segments + doubles), not O(characters).
    """
    ends: list[int] = []
    n_doubles = len(doubles)
    k = 0
    start = 0
    while start < length:
        budget = limit
        i = start
        while True:
            nxt = doubles[k] if k < n_doubles else length
            span = nxt - i
            if span >= budget:
                end = i + budget
                break
            budget -= span
            i = nxt
            if i == length:
                end = length
                break
            if budget < 2:
                # Only one unit left: the pair moves whole to the next segment.
                end = i
                break
            budget -= 2
            i += 1
            k += 1
        ends.append(end)
        start = end
    return ends


def _layout(text: str, ucs2: bool) -> tuple[TextAnalysis, list[int] | None]:
    """The analysis plus, when packing is not plain division, the exact segment ends."""
    n = len(text)
    if not n:
        return _EMPTY, None
    if not ucs2 and NOT_BASIC_RE.search(text) is None:
        if n <= SEPTETS_SINGLE:
            return _GSM7_SINGLE[n], None
        return TextAnalysis(GSM7, -(-n // SEPTETS_MULTI), n, SEPTETS_MULTI, ()), None

    forced = NOT_GSM7_RE.findall(text)
    if not forced and not ucs2:
        doubles = [m.start() for m in EXTENSION_RE.finditer(text)]
        encoding, single, multi = GSM7, SEPTETS_SINGLE, SEPTETS_MULTI
        forced_ucs2: tuple[str, ...] = ()
    else:
        doubles = [m.start() for m in _ASTRAL_RE.finditer(text)] if not text.isascii() else []
        encoding, single, multi = UCS2, UCS2_SINGLE, UCS2_MULTI
        forced_ucs2 = tuple(dict.fromkeys(forced))

    units = n + len(doubles)
    if units <= single:
        return TextAnalysis(encoding, 1, units, single, forced_ucs2), None
    if not doubles:
        return TextAnalysis(encoding, -(-units // multi), units, multi, forced_ucs2), None
    ends = _segment_ends(n, doubles, multi)
    return TextAnalysis(encoding, len(ends), units, multi, forced_ucs2), ends


def analyze(text: str, *, ucs2: bool = False) -> TextAnalysis:
    """Price a message before it is queued: encoding, segments and the characters to blame.

    The text is taken exactly as it will be submitted (no normalisation), because that is
    what the provider will bill. ``ucs2`` prices it as UCS-2 whatever its characters, as a
    provider sends it when asked to (Telekom SK's ``unicode=true``); ``forced_ucs2`` still
    names only the characters that would have forced it.
    """
    return _layout(text, ucs2)[0]


def split_segments(text: str, *, ucs2: bool = False) -> list[str]:
    """The segment texts as a phone receives them, so previews and tests can show the real cuts.

    Always ``len(split_segments(t, ucs2=u)) == analyze(t, ucs2=u).segments`` and
    ``"".join(split_segments(t)) == t``.
    """
    analysis, ends = _layout(text, ucs2)
    if analysis.segments <= 1:
        return [text] if text else []
    if ends is None:
        step = analysis.per_segment
        return [text[i : i + step] for i in range(0, len(text), step)]
    segments: list[str] = []
    start = 0
    for end in ends:
        segments.append(text[start:end])
        start = end
    return segments
