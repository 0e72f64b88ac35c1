"""What a text costs, as one report a person or a program can read."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sms_worker.text.downgrade import downgrade_to_gsm7
from sms_worker.text.segments import analyze, split_segments


def cost_report(text: str, *, downgrade: bool = False) -> dict[str, Any]:
    """The cost of ``text``, after Telekom SK's GSM-7 downgrade when ``downgrade``.

    Keys: ``encoding`` ("GSM-7" or "UCS-2"), ``segments`` (how many), ``units`` (septets or UTF-16
    units), ``per_segment`` (units per segment), ``forced_ucs2`` (the characters that forced
    UCS-2, a list), ``segment_texts`` (the texts of the segments as sent) and, only when the
    downgrade changed the text, ``downgraded_text``.
    """
    sent = downgrade_to_gsm7(text) if downgrade else text
    analysis = analyze(sent)
    report = {**asdict(analysis), "forced_ucs2": list(analysis.forced_ucs2), "segment_texts": split_segments(sent)}
    if sent != text:
        report["downgraded_text"] = sent
    return report
