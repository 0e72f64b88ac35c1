"""Settings read from ``SMS_WORKER_*`` environment variables (and an optional ``.env``).

Every knob lives here so that a deployment is described by its environment alone; the
defaults are the embedded ones ``make demo`` runs on (a SQLite file and a bundled Redis).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import tomllib
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from dotenv import dotenv_values
from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sms_worker.endpoints import http_url_problem, listen_address_problem, redis_url_problem
from sms_worker.errors import SettingsError
from sms_worker.lifecycle.ambiguity import LEGACY_NAMES, OnAmbiguous

log = logging.getLogger(__name__)

PREFIX = "SMS_WORKER_"
"""What every setting's variable begins with."""
ENVIRONMENT_SUFFIX = "_env"
"""In the providers file, ``<credential>_env`` names the environment variable holding the credential."""
ENV_FILE = ".env"
"""The file of variables read besides the environment, in the current directory (the
environment wins over it)."""
TEST_PREFIX = "SMS_WORKER_TEST_"
"""The test suite's own variables (``SMS_WORKER_TEST_DATABASE_URL``, tests/conftest.py): not
settings, never reported as unknown."""
SECONDS_LIST_FORM = "seconds (one or more, none negative) separated by commas, e.g. 30,120,300, or a JSON list, e.g. [30,120,300]"


def _seconds_list(value: object) -> object:
    """A list of seconds as a variable gives it, ``30,120,300`` or ``[30,120,300]``, as a list of
    floats; ValueError saying the form (:data:`SECONDS_LIST_FORM`) for any other string. A value
    that is no string (given in Python) is left to the field's type."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        seconds = [float(item) for item in (json.loads(text) if text.startswith("[") else text.split(","))]
    except (ValueError, TypeError):
        seconds = []
    if not seconds or not all(0 <= second < math.inf for second in seconds):  # NaN compares false: refused too
        raise ValueError(f"must be {SECONDS_LIST_FORM}")
    return seconds


def _checked(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A string that ``problem_of`` (:mod:`sms_worker.endpoints`) finds nothing wrong with."""

    def check(value: str) -> str:
        if (problem := problem_of(value)) is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


SecondsList = Annotated[tuple[Annotated[float, Field(ge=0, allow_inf_nan=False)], ...], Field(min_length=1), BeforeValidator(_seconds_list)]
"""Delays in seconds, at least one, none negative: ``30,120,300`` or ``[30,120,300]`` in a variable."""
Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP port to listen on."""
ListenAddress = Annotated[str, _checked(listen_address_problem)]
"""An IP address or host name to listen on (:func:`~sms_worker.endpoints.listen_address_problem`)."""
HttpUrl = Annotated[str, _checked(http_url_problem)]
"""An absolute http(s) URL (:func:`~sms_worker.endpoints.http_url_problem`)."""
RedisUrl = Annotated[str, _checked(redis_url_problem)]
"""A URL redis-py connects with (:func:`~sms_worker.endpoints.redis_url_problem`)."""


class Settings(BaseSettings):
    """Every setting; each field is read from ``SMS_WORKER_<FIELD>`` (or the variables its
    ``validation_alias`` names). No value is decoded as JSON before its field's own validation
    (``enable_decoding=False``), so a list's or table's variable that cannot be read is an error
    naming it, like any other; a list field parses its variable itself (:data:`SecondsList`)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=ENV_FILE, extra="ignore", populate_by_name=True, enable_decoding=False)

    home: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("sms_worker"),
        description="Directory for the embedded database, Redis and callback token: one per user (~/.local/share/sms_worker on Linux), whatever the current directory.",
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file under home.")
    redis_url: RedisUrl | None = Field(
        None, description="Redis URL (redis://, rediss:// or unix://); default (or empty): an embedded redis-server under home."
    )
    redis_wait_seconds: float = Field(
        30,
        ge=0,
        description="How long a long-running process (worker, scheduler, Flower, callbacks) waits at start for Redis to answer: "
        "the one redis_url names, else the embedded one that `sms-worker redis` runs.",
    )

    batch_size: int = Field(100, ge=1, le=1000, description="Messages a dispatch task claims at once.")
    batch_seconds: float = Field(
        5,
        ge=0,
        le=60,
        description="How long a dispatch task goes on taking new arrivals into its free call slots; 0: it sends one batch and ends.",
    )
    http_concurrency: int = Field(
        512,
        ge=1,
        le=2048,
        description="The most provider calls in flight per worker process: a ceiling. Each account gets as many as its rate limit "
        "and its measured answer time need.",
    )
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
    retry_backoff_seconds: SecondsList = Field((30, 120, 300, 900, 1800), description="Delay before each retry (the last repeats).")
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
    status_check_delays_seconds: SecondsList = Field(
        (1, 2, 5, 15, 60, 300, 900), description="Delay before each status check of an accepted message (the last repeats)."
    )
    receipt_overdue_seconds: float = Field(
        300,
        ge=0,
        description="For an account whose provider posts receipts (receipt_callbacks = true in the providers file): how long after its "
        "submission a message with no final receipt is overdue, and only then checked.",
    )
    status_check_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="An account's budget of status-check requests per second, as a share of its rate, unless the providers file gives "
        "its check_rate; shared by every process, apart from the send rate.",
    )

    providers_file: Path | None = Field(None, description="TOML file of provider accounts and routing rules; without it, one Telekom SK account.")
    breaker_consecutive_failures: int = Field(5, ge=1, description="Transient faults in a row that open an account's circuit breaker.")
    breaker_window: int = Field(20, ge=2, description="Recent calls the breaker's failure ratio is measured over.")
    breaker_failure_ratio: float = Field(0.5, gt=0, le=1, description="Share of failed calls in the window that opens the breaker.")
    breaker_cooldown_seconds: float = Field(30, gt=0, description="How long an open breaker keeps its account out of routing before a probe.")
    telekom_sk_url: HttpUrl = "http://127.0.0.1:8025/telekom-sk"
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

    sandbox_host: ListenAddress = "127.0.0.1"
    sandbox_port: Port = 8025
    flower_port: Port = 5555
    callback_host: ListenAddress = "127.0.0.1"
    callback_port: Port = 8026
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
        from sqlalchemy.engine import make_url  # here: a command that reads no database imports no SQLAlchemy
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

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

    @field_validator("callback_token", "redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """``SMS_WORKER_CALLBACK_TOKEN=`` is no token, not a token every request carries;
        ``SMS_WORKER_REDIS_URL=`` is no URL: the embedded Redis."""
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


def _variables() -> dict[str, str]:
    """Every variable a setting is read from, upper-case, mapped to the setting's own variable
    (a deprecated name to the current one: the first of its ``validation_alias`` choices)."""
    variables: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [str(choice).upper() for choice in alias.choices] if isinstance(alias, AliasChoices) else [f"{PREFIX}{name.upper()}"]
        variables.update(dict.fromkeys(names, names[0]))
    return variables


VARIABLES = _variables()
"""Every variable a setting is read from (upper-case) and the setting's current variable."""
CURRENT = sorted(set(VARIABLES.values()))
"""The current variable of every setting, what a misspelt one is matched against."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """This process's settings, from ``SMS_WORKER_*`` variables and ``.env``, read once. Raises
    :class:`~sms_worker.errors.SettingsError` naming the first variable that cannot be used
    (a secret's value, or a URL that may hold a password, is never repeated in it)."""
    if "SMS_WORKER_MAX_PARTS" in os.environ:
        warnings.warn("SMS_WORKER_MAX_PARTS is deprecated, use SMS_WORKER_MAX_SEGMENTS (it will be removed in 0.3)", FutureWarning, stacklevel=2)
    try:
        settings = Settings()
    except ValidationError as error:
        raise settings_error(error) from None
    _warn_of_unknown_variables(settings)
    return settings


_told_unknown: set[str] = set()
"""The unknown variables this process has warned of: each once, however often settings are read."""


def _warn_of_unknown_variables(settings: Settings) -> None:
    """Log a warning for each ``SMS_WORKER_*`` variable of the environment or ``.env`` that is
    no setting, once per process: a misspelt one is otherwise ignored without a word. It names
    the setting meant when one is close (``did you mean SMS_WORKER_BATCH_SIZE?``, by
    :func:`difflib.get_close_matches`). A warning, not an error: a deployment may carry variables
    of its own under the prefix. Never reported: the deprecated names still read, the tests' own
    (:data:`TEST_PREFIX`) and the variables the providers file names for credentials."""
    dotenv = dotenv_values(ENV_FILE) if Path(ENV_FILE).is_file() else {}
    sources = {name: ENV_FILE for name in dotenv} | {name: "the environment" for name in os.environ}
    unknown = {
        name: source
        for name, source in sources.items()
        if name.upper().startswith(PREFIX)
        and not name.upper().startswith(TEST_PREFIX)
        and name.upper() not in VARIABLES
        and name not in _told_unknown
    }
    if unknown and settings.providers_file is not None:
        unknown = {name: source for name, source in unknown.items() if name not in _credential_variables(settings.providers_file)}
    for name, source in unknown.items():
        meant = difflib.get_close_matches(name.upper().removeprefix(PREFIX), [current.removeprefix(PREFIX) for current in CURRENT], n=1)
        hint = f": did you mean {PREFIX}{meant[0]}?" if meant else ""
        log.warning("%s (in %s) is not a setting and is ignored%s", name, source, hint)
        _told_unknown.add(name)


def _credential_variables(path: Path) -> frozenset[str]:
    """The environment variables the providers file at ``path`` names for its accounts'
    credentials (``api_key_env = "DEXATEL_KEY"``), whatever else is wrong with it; none if it
    cannot be read (loading it, :mod:`sms_worker.providers.accounts`, says why)."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("accounts")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return frozenset()
    accounts = [table for table in tables.values() if isinstance(table, dict)] if isinstance(tables, dict) else []
    return frozenset(
        variable for table in accounts for key, variable in table.items() if key.endswith(ENVIRONMENT_SUFFIX) and isinstance(variable, str)
    )


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
