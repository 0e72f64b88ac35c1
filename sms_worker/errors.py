"""The base of every exception sms_worker defines, so a caller can tell ours from all others."""

from __future__ import annotations


class SmsWorkerError(Exception):
    """Base of every error raised by sms_worker's own code: ``except SmsWorkerError`` catches an
    invalid field, a refused batch, a bad providers file or a provider's failure, and nothing
    else. Each subclass keeps the built-in base it had (``ValueError`` for invalid input)."""


class InvalidField(SmsWorkerError, ValueError):
    """One field of one message is wrong; ``str()`` names the field and the reason."""

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field, self.reason, self.index = field, reason, index
        where = f"messages[{index}]." if index is not None else ""
        super().__init__(f"{where}{field}: {reason}")

    def at(self, index: int) -> InvalidField:
        return InvalidField(self.field, self.reason, index)
