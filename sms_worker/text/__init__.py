"""SMS text encoding: what a message costs in segments, how it is split, and how to make it cheaper.

Rules follow GSM 03.38 / 3GPP TS 23.038: GSM-7 (160 septets, 153 per segment, extension
characters cost two and an escape pair is never split) unless any character is outside it,
in which case the whole message is UCS-2 (70 units, 67 per segment, surrogate pairs never split).
"""

from sms_worker.text.downgrade import Downgrade, downgrade, downgrade_to_gsm7
from sms_worker.text.gsm7 import is_gsm7
from sms_worker.text.report import cost_report
from sms_worker.text.segments import GSM7, UCS2, TextAnalysis, analyze, split_segments

__all__ = [
    "Downgrade",
    "GSM7",
    "UCS2",
    "TextAnalysis",
    "analyze",
    "cost_report",
    "downgrade",
    "downgrade_to_gsm7",
    "is_gsm7",
    "split_segments",
]
