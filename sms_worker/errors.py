"""The base of every exception sms_worker defines, so a caller can tell ours from all others."""

from __future__ import annotations


class SmsWorkerError(Exception):
    """Base of every error raised by sms_worker's own code: ``except SmsWorkerError`` catches an
    invalid field, a refused batch, a bad providers file or a provider's failure, and nothing
    else. Each subclass keeps the built-in base it had (``ValueError`` for invalid input)."""
