"""The base of every exception sms_worker defines, so a caller can tell ours from all others."""

from __future__ import annotations

import uuid


class SmsWorkerError(Exception):
    """Base of every error raised by sms_worker's own code: ``except SmsWorkerError`` catches an
    invalid field, a refused batch, a bad providers file or a provider's failure, and nothing
    else. Each subclass keeps the built-in base it had (``ValueError`` for invalid input)."""


class SettingsError(SmsWorkerError, ValueError):
    """A setting that cannot be used: ``variable`` names it as it is set (``SMS_WORKER_MAX_SEGMENTS``,
    in the environment or ``.env``), ``reason`` says why; ``str()`` is both."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable, self.reason = variable, reason
        super().__init__(f"{variable}: {reason}")


class ProvidersFileError(SmsWorkerError, ValueError):
    """The providers file cannot be used; each line names the file, the field and the reason
    (raised by :func:`~sms_worker.providers.accounts.load_providers`)."""


class RedisUnavailable(SmsWorkerError):
    """Redis did not answer within ``SMS_WORKER_REDIS_WAIT_SECONDS``; ``str()`` says which one and
    what to run or set (never the URL: it may hold a password). Raised by
    :func:`~sms_worker.embedded.await_redis`."""


class NotMigrated(SmsWorkerError, RuntimeError):
    """The database's schema is not the one this version needs: ``current`` is its revision
    (None: no schema at all), ``needed`` the latest. ``str()`` says what to run."""

    def __init__(self, current: str | None, needed: str) -> None:
        self.current, self.needed = current, needed
        at = f"at revision {current}" if current else "empty"
        super().__init__(f"not migrated ({at}, this version needs {needed}): run `sms-worker db upgrade`")


class InvalidField(SmsWorkerError, ValueError):
    """One field of one message is wrong; ``str()`` names the field and the reason."""

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field, self.reason, self.index = field, reason, index
        where = f"messages[{index}]." if index is not None else ""
        super().__init__(f"{where}{field}: {reason}")

    def at(self, index: int) -> InvalidField:
        return InvalidField(self.field, self.reason, index)


class StoreUnavailable(SmsWorkerError):
    """A server a send needs failed before anything was written: nothing was written, and the
    same request may be sent again. ``store`` names it (``"database"``), ``problem`` says what
    went wrong (``"unreachable"``, ``"connection lost"``, ...) and ``detail`` is the driver's own
    first line; ``str()`` is ``database: unreachable (DETAIL); nothing was written``."""

    def __init__(self, store: str, problem: str, detail: str) -> None:
        self.store, self.problem, self.detail = store, problem, detail
        super().__init__(f"{store}: {self.reason}")

    @property
    def reason(self) -> str:
        return f"{self.problem} ({self.detail}); nothing was written"


class OutcomeUnknown(SmsWorkerError):
    """The COMMIT of a send failed (its connection lost), and asking the database again did not
    settle whether the messages were written. ``ids`` are the ids the send would have returned
    (``sms-worker status ID`` tells, once the database answers); ``idempotency_keys`` the keys
    the messages carried, in the same order (None where a message had none). Sending the same
    messages again with the same keys is safe: a key already written returns its message's id.
    A message without a key, sent again, may be written twice."""

    def __init__(self, detail: str, ids: list[uuid.UUID], idempotency_keys: list[str | None]) -> None:
        self.detail, self.ids, self.idempotency_keys = detail, ids, idempotency_keys
        super().__init__(f"database: {self.reason}")

    @property
    def reason(self) -> str:
        keyless = sum(key is None for key in self.idempotency_keys)
        retry = "sending again with the same idempotency key is safe"
        if keyless:
            retry += f"; {keyless} message(s) have no key: check `sms-worker status ID` before sending them again, or they may be sent twice"
        return f"outcome unknown: the commit failed ({self.detail}) and the database could not be asked whether it was applied, so the message(s) may have been written; {retry}"
