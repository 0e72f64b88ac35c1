"""What a text costs, as one report a person or a program can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sms_worker.text.downgrade import downgrade_to_gsm7
from sms_worker.text.segments import TextAnalysis, analyze, split_segments


@dataclass(frozen=True, slots=True)
class CostReport:
    """The cost of the text as sent: its :class:`TextAnalysis`, the texts of its segments, and
    the text after Telekom SK's GSM-7 downgrade when that changed it (else None)."""

    analysis: TextAnalysis
    segment_texts: list[str]
    downgraded_text: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``encoding``, ``segments``, ``units``, ``per_segment``, ``forced_ucs2`` (a list),
        ``segment_texts`` and, only when the downgrade changed the text, ``downgraded_text``."""
        found = {**asdict(self.analysis), "forced_ucs2": list(self.analysis.forced_ucs2), "segment_texts": self.segment_texts}
        if self.downgraded_text is not None:
            found["downgraded_text"] = self.downgraded_text
        return found


def cost_report(text: str, *, downgrade: bool = False) -> CostReport:
    """The cost of ``text``, after Telekom SK's GSM-7 downgrade when ``downgrade``."""
    sent = downgrade_to_gsm7(text) if downgrade else text
    return CostReport(analyze(sent), split_segments(sent), sent if sent != text else None)
