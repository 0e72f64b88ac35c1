"""Settings read from ``SMS_WORKER_*`` environment variables (and an optional ``.env``).

Every knob lives here so that a deployment is described by its environment alone; the
defaults are the embedded ones ``make demo`` runs on (a SQLite file and a bundled Redis).
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from sms_worker.errors import SettingsError
from sms_worker.lifecycle.ambiguity import LEGACY_NAMES, OnAmbiguous


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMS_WORKER_", env_file=".env", extra="ignore", populate_by_name=True)

    home: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("sms_worker"),
        description="Directory for the embedded database, Redis and callback token: one per user (~/.local/share/sms_worker on Linux), whatever the current directory.",
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file under home.")
    redis_url: str | None = Field(None, description="Redis URL; default: an embedded redis-server under home.")
    redis_wait_seconds: float = Field(
        30,
        ge=0,
        description="How long a long-running process (worker, scheduler, Flower, callbacks) waits at start for Redis to answer: "
        "the one redis_url names, else the embedded one that `sms-worker redis` runs.",
    )

    batch_size: int = Field(100, ge=1, le=1000, description="Messages a dispatch task claims at once.")
    http_concurrency: int = Field(8, ge=1, le=512, description="Provider calls in flight per worker process.")
    max_pending_wakeups: int = Field(32, ge=1, description="Wake-ups waiting per queue; running tasks wake more while a backlog remains.")
    standard_share: float = Field(0.2, ge=0, le=1, description="Share of each batch kept for standard when backlogged.")
    low_share: float = Field(0.1, ge=0, le=1, description="Share of each batch kept for low when backlogged.")
    max_segments: int = Field(
        10,
        ge=1,
        le=255,
        validation_alias=AliasChoices("SMS_WORKER_MAX_SEGMENTS", "SMS_WORKER_MAX_PARTS"),
        description="Longest message accepted, in SMS segments (SMS_WORKER_MAX_PARTS: its deprecated name, until 0.3).",
    )
    default_validity_minutes: int = Field(1440, ge=1, le=1440)

    max_retries: int = Field(5, ge=0, le=20)
    retry_window_seconds: int = Field(3600, ge=1)
    retry_backoff_seconds: tuple[float, ...] = Field((30, 120, 300, 900, 1800), min_length=1)
    on_ambiguous: OnAmbiguous = Field(
        "resend",
        validation_alias=AliasChoices("SMS_WORKER_ON_AMBIGUOUS", "SMS_WORKER_RETRY_AMBIGUOUS"),
        description="After an attempt that may have reached a provider that cannot be asked: resend on that account (at least once) "
        "or give-up (at most once, UNKNOWN); accounts and messages may say otherwise (sms_worker.lifecycle.ambiguity). "
        "SMS_WORKER_RETRY_AMBIGUOUS (same-account, never): its deprecated name, until 0.3.",
    )

    lease_seconds: float = Field(
        10,
        gt=0,
        description="A worker renews its lease every fifth of this; once the scheduler's reclaimer has watched it stand still this long, it takes its claims back.",
    )
    stale_queued_seconds: int = Field(600, ge=1, description="A queued message untouched this long is re-queued.")
    promoter_interval_seconds: float = Field(0.05, gt=0)
    sweep_interval_seconds: float = Field(30, gt=0)
    commit_recheck_seconds: float = Field(
        5,
        ge=0,
        description="After a send's COMMIT lost its connection, how long to keep asking the database whether it committed (connecting included).",
    )
    poll_interval_seconds: float = Field(2, gt=0)
    status_check_delays_seconds: tuple[float, ...] = Field((1, 2, 5, 15, 60, 300, 900), min_length=1)

    providers_file: Path | None = Field(None, description="TOML file of provider accounts and routing rules; without it, one Telekom SK account.")
    breaker_consecutive_failures: int = Field(5, ge=1, description="Transient faults in a row that open an account's circuit breaker.")
    breaker_window: int = Field(20, ge=2, description="Recent calls the breaker's failure ratio is measured over.")
    breaker_failure_ratio: float = Field(0.5, gt=0, le=1, description="Share of failed calls in the window that opens the breaker.")
    breaker_cooldown_seconds: float = Field(30, gt=0, description="How long an open breaker keeps its account out of routing before a probe.")
    telekom_sk_url: str = "http://127.0.0.1:8025/telekom-sk"
    telekom_sk_token: SecretStr = SecretStr("sandbox-token")
    telekom_sk_transport: Literal["json", "xml"] = "json"
    telekom_sk_use_session: bool = Field(True, description="False: send the token with every request, keep no session.")
    telekom_sk_rate: float = Field(50.0, gt=0, description="Messages (or segments) per second for this account.")
    telekom_sk_burst: int = Field(50, ge=1)
    rate_limit_unit: Literal["messages", "segments"] = Field(
        "messages", description="What an account's rate counts: messages, or their SMS segments ('parts': deprecated, until 0.3)."
    )
    rate_limit_headroom_seconds: float = Field(
        0.03, ge=0, description="Burst the claiming bucket keeps back; departures are paced to the rate by the send window."
    )
    http_timeout_seconds: float = Field(10.0, gt=0, description="Deadline of one whole provider exchange: connect, send, every read.")
    lookup_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="Deadline of one question 'do you have this message?' after an ambiguous attempt, every page of the provider's listing "
        "included (sms_worker.dispatch.lookup); past it the message is asked about again later, nothing sent.",
    )
    lookup_clock_slack_seconds: float = Field(
        2.0,
        ge=0,
        description="Widening, each side, of the time window a provider's listing is searched in after an ambiguous attempt, for what "
        "measuring its clock (its answers' Date) cannot tell: the second-resolution of its times, the round trip.",
    )
    max_response_bytes: int = Field(1 << 20, ge=1024, description="Longest provider answer read; a longer one is cut off and unreadable.")

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8025
    flower_port: int = 5555
    callback_host: str = "127.0.0.1"
    callback_port: int = 8026
    callback_token: SecretStr | None = Field(
        None, description="The ?token= a callback must carry for an account without its own callback_token in the providers file; empty: none."
    )
    callbacks_trusted_network: bool = Field(
        False,
        description="True: the callback receiver is reachable only by the providers, so an account without a callback token takes "
        "callbacks without one. False: such an account's callbacks are refused; if no account has a token, the receiver uses the one "
        "generated in home/callback_token.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """A SQLAlchemy URL (RFC 1738 form) of one of the two databases sms_worker runs on."""
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL (postgresql://USER@HOST:5432/NAME or sqlite:///PATH)") from None
        backend = url.get_backend_name()
        if backend == "postgres":
            raise ValueError("say postgresql://, not postgres:// (SQLAlchemy knows PostgreSQL only by its full name)")
        if backend not in ("postgresql", "sqlite"):
            raise ValueError(f"{backend!r} is not supported: give a postgresql:// or a sqlite:/// URL")
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(
                f"names the driver {url.get_driver_name()!r}, which SQLAlchemy does not have (postgresql+psycopg:// is installed)"
            ) from None
        return value

    @field_validator("callback_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        """``SMS_WORKER_CALLBACK_TOKEN=`` is no token, not a token every request carries."""
        return None if value == "" else value

    @field_validator("rate_limit_unit", mode="before")
    @classmethod
    def _segments_were_parts(cls, value: object) -> object:
        if value == "parts":
            warnings.warn("SMS_WORKER_RATE_LIMIT_UNIT=parts is deprecated, use segments (it will be removed in 0.3)", FutureWarning, stacklevel=2)
            return "segments"
        return value

    @field_validator("on_ambiguous", mode="before")
    @classmethod
    def _legacy_ambiguous(cls, value: object) -> object:
        if isinstance(value, str) and value in LEGACY_NAMES:
            warnings.warn(
                f"SMS_WORKER_RETRY_AMBIGUOUS={value} is deprecated, use SMS_WORKER_ON_AMBIGUOUS={LEGACY_NAMES[value]} (it will be removed in 0.3)",
                FutureWarning,
                stacklevel=2,
            )
            return LEGACY_NAMES[value]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'sms_worker.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """This process's settings, from ``SMS_WORKER_*`` variables and ``.env``, read once. Raises
    :class:`~sms_worker.errors.SettingsError` naming the first variable that cannot be used
    (a secret's value, or a URL that may hold a password, is never repeated in it)."""
    if "SMS_WORKER_MAX_PARTS" in os.environ:
        warnings.warn("SMS_WORKER_MAX_PARTS is deprecated, use SMS_WORKER_MAX_SEGMENTS (it will be removed in 0.3)", FutureWarning, stacklevel=2)
    try:
        return Settings()
    except ValidationError as error:
        raise settings_error(error) from None


def settings_error(error: ValidationError) -> SettingsError:
    """The first problem of ``error`` (raised by :class:`Settings`) as the variable it was read from."""
    [first, *_] = error.errors(include_url=False)
    name = str(first["loc"][0]) if first["loc"] else "settings"
    field = Settings.model_fields.get(name)
    secret = name.endswith("_url") or (field is not None and "SecretStr" in str(field.annotation))  # a URL may hold a password
    shown = "" if secret or "input" not in first or isinstance(first["input"], dict) else f" (got {first['input']!r})"
    reason = str(first["msg"]).removeprefix("Value error, ")
    return SettingsError(name if name.startswith("SMS_WORKER_") else f"SMS_WORKER_{name.upper()}", f"{reason}{shown}")


def reset_settings() -> None:
    """Forget the cached settings, so a changed environment takes effect (tests, CLI flags)."""
    get_settings.cache_clear()
