"""How many SMS parts Telekom SK bills for a text, given its ``unicode`` parameter.

``unicode`` is three-valued in the document: false strips diacritics to stay in GSM-7, true
sends UTF-16 whatever the text, and leaving it out detects the encoding from the text.
"""

from __future__ import annotations

from sms_worker.text import GSM7, analyze, downgrade_to_gsm7
from sms_worker.text.segments import UCS2_MULTI, UCS2_SINGLE


def count_parts(text: str, unicode: bool | None) -> int:
    if unicode is False:
        return analyze(downgrade_to_gsm7(text)).segments
    analysis = analyze(text)
    if unicode and analysis.encoding == GSM7:
        return _ucs2_parts_of_gsm7(text)
    return analysis.segments


def _ucs2_parts_of_gsm7(text: str) -> int:
    """Parts of a GSM-7 text forced into UCS-2: every GSM-7 character is one UTF-16 unit,
    so there is no surrogate pair to keep whole and plain division is exact."""
    units = len(text)
    return 1 if units <= UCS2_SINGLE else -(-units // UCS2_MULTI)
