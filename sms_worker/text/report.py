"""What a text costs, as one report a person or a program can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sms_worker.text.downgrade import downgrade as fold
from sms_worker.text.segments import TextAnalysis, analyze, split_segments


@dataclass(frozen=True, slots=True)
class CostReport:
    """The cost of the text as sent: its :class:`TextAnalysis`, the texts of its segments, the
    text after the GSM-7 downgrade (``unicode=false``) when that changed it (else None), and the
    characters with no GSM-7 form, for which ``send`` with ``unicode=false`` refuses the text."""

    analysis: TextAnalysis
    segment_texts: list[str]
    downgraded_text: str | None = None
    unmapped: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """``encoding``, ``segments``, ``units``, ``per_segment``, ``forced_ucs2`` (a list),
        ``segment_texts`` and, only when the downgrade changed the text, ``downgraded_text`` and
        ``unmapped`` (a list, empty unless some character has no GSM-7 form)."""
        found = {**asdict(self.analysis), "forced_ucs2": list(self.analysis.forced_ucs2), "segment_texts": self.segment_texts}
        if self.downgraded_text is not None:
            found["downgraded_text"] = self.downgraded_text
            found["unmapped"] = list(self.unmapped)
        return found


def cost_report(text: str, *, downgrade: bool = False, ucs2: bool = False) -> CostReport:
    """The cost of ``text``, after the GSM-7 downgrade (``unicode=false``) when ``downgrade``, in
    UCS-2 whatever its characters (``unicode=true``) when ``ucs2``."""
    if not downgrade:
        return CostReport(analyze(text, ucs2=ucs2), split_segments(text, ucs2=ucs2))
    folded = fold(text)
    return CostReport(analyze(folded.text), split_segments(folded.text), folded.text if folded.text != text else None, folded.unmapped)
