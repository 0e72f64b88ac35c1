"""How many SMS parts Telekom SK bills for a text, given its ``unicode`` parameter.

``unicode`` is three-valued in the document: false strips diacritics to stay in GSM-7, true
sends UTF-16 whatever the text, and leaving it out detects the encoding from the text.
"""

from __future__ import annotations

from sms_worker.text import analyze, downgrade_to_gsm7


def count_parts(text: str, unicode: bool | None) -> int:
    if unicode is False:
        return analyze(downgrade_to_gsm7(text)).segments
    return analyze(text, ucs2=bool(unicode)).segments
