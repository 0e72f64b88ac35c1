"""Read-only views of messages and accounts for the CLI and the demo, as values that print
themselves as JSON with :func:`dataclasses.asdict`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from sms_worker.config import get_settings
from sms_worker.db.engine import get_engine
from sms_worker.db.failures import saying_when_not_migrated
from sms_worker.errors import InvalidField
from sms_worker.lifecycle.status import HELD_VALUES, WAITING_VALUES
from sms_worker.lifecycle.tables import EVENTS, MESSAGES
from sms_worker.logs import mask_phone
from sms_worker.priority import Priority

if TYPE_CHECKING:
    from sms_worker.providers.registry import Account
    from sms_worker.runtime import Deployment


@dataclass(frozen=True, slots=True)
class MessageHistory:
    """A message as its row holds it (every column by name; the id as text, the recipient
    masked, the priority as its word: ``high``, ``standard`` or ``low``) and its events, oldest
    first (every column but the ids). What ``sms-worker status`` prints and
    returns :func:`sms_worker.message_status`."""

    message: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Pointers ready per priority (``high``, ``standard``, ``low``), pointers due at a later
    time, the paused accounts with the reason, and messages per status."""

    ready: dict[str, int]
    due: int
    paused_accounts: dict[str, str]
    statuses: dict[str, int]
    possible_duplicates: int = 0
    """Messages accepted by a resend after an ambiguous attempt their account could not be asked
    about: each may have reached its recipient twice (:mod:`sms_worker.lifecycle.ambiguity`)."""
    unsure: int = 0
    """Messages waiting or held (:data:`~sms_worker.lifecycle.status.WAITING`,
    :data:`~sms_worker.lifecycle.status.HELD`) whose last ambiguous attempt is not settled."""
    redis_eviction: str | None = None
    """Why Redis may lose our keys (:mod:`sms_worker.eviction`), or None."""


@dataclass(frozen=True, slots=True)
class AccountOverview:
    """One account as an operator needs to see it. Rates in messages (or segments) per second;
    ``breaker_until`` in epoch seconds; ``recent_failures`` as ``failed/calls``; ``paused``: the
    reason, or None."""

    name: str
    type: str
    rate_limit: float
    burst: int
    current_rate: float
    breaker: str
    breaker_until: float | None
    breaker_reason: str | None
    recent_failures: str
    paused: str | None


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """Whether an account's credentials work, and what its API said (balance, session) or why not."""

    name: str
    ok: bool
    detail: str


def message_history(message_id: uuid.UUID, database_url: str | None = None) -> MessageHistory | None:
    """The message ``message_id`` and its history, or None if there is no such message; the
    database is ``database_url``, else the settings' (``SMS_WORKER_DATABASE_URL``, else SQLite
    under ``SMS_WORKER_HOME``). Raises :class:`~sms_worker.errors.NotMigrated` for a database
    behind this version."""
    engine = get_engine(database_url or get_settings().resolved_database_url)
    with saying_when_not_migrated(engine), engine.connect() as conn:
        row = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).mappings().first()
        if row is None:
            return None
        events = conn.execute(select(EVENTS).where(EVENTS.c.message_id == message_id).order_by(EVENTS.c.id)).mappings().all()
    message = {key: value for key, value in row.items()}
    message["id"] = str(message["id"])
    message["recipient"] = mask_phone(message["recipient"])
    message["priority"] = Priority(message["priority"]).label
    return MessageHistory(message, [{k: v for k, v in e.items() if k not in ("id", "message_id")} for e in events])


def message_status(message_id: uuid.UUID | str) -> MessageHistory | None:
    """What became of a message: the id ``send_sms`` returned (a UUID, or its text) to its row
    and history (:class:`MessageHistory`, what ``sms-worker status`` prints), or None if there is
    no such message. Raises :class:`~sms_worker.errors.InvalidField` for ``id`` if ``message_id``
    is not a message id, and :class:`~sms_worker.errors.NotMigrated` (saying to run
    ``sms-worker db upgrade``) for a database behind this version."""
    if not isinstance(message_id, uuid.UUID):
        try:
            message_id = uuid.UUID(str(message_id))
        except ValueError:
            raise InvalidField("id", f"{message_id!r} is not a message id") from None
    return message_history(message_id)


def pipeline_stats(deployment: Deployment) -> PipelineStats:
    """Backlog and outcomes at a glance: Flower shows Celery's wake-ups, not the pointer lists.
    Raises :class:`~sms_worker.errors.NotMigrated` for a database behind this version, asked
    first: the counts need no column a later revision may add (0006's ``pinned_account``), so a
    schema behind would not make them fail."""
    from sms_worker.db.migrate import schema_behind
    from sms_worker.eviction import eviction_warning
    from sms_worker.providers.pause import paused_reason
    from sms_worker.queues import keys
    from sms_worker.queues.pointers import ready_lengths

    with saying_when_not_migrated(deployment.engine), deployment.engine.connect() as conn:
        behind = schema_behind(deployment.engine)
        if behind is not None:
            raise behind
        statuses: dict[str, int] = dict(conn.execute(select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)).all())
        doubled = conn.execute(select(func.count()).where(MESSAGES.c.possible_duplicate)).scalar_one()
        unsure = conn.execute(
            select(func.count()).where(MESSAGES.c.unsure_since.is_not(None), MESSAGES.c.status.in_([*WAITING_VALUES, *HELD_VALUES]))
        ).scalar_one()
    return PipelineStats(
        ready={p.label: n for p, n in ready_lengths(deployment.redis).items()},
        due=deployment.redis.zcard(keys.DUE),
        paused_accounts={name: reason for name in deployment.accounts if (reason := paused_reason(deployment.redis, name)) is not None},
        statuses=statuses,
        possible_duplicates=doubled,
        unsure=unsure,
        redis_eviction=eviction_warning(deployment.redis),
    )


def accounts_overview(deployment: Deployment) -> list[AccountOverview]:
    """Each account as an operator needs to see it: limit, actual rate, breaker, pause."""
    from sms_worker.providers.pause import paused_reason
    from sms_worker.routing.meter import current_rate

    overview: list[AccountOverview] = []
    for name, spec in sorted(deployment.accounts.items()):
        breaker = deployment.breaker(name).state()
        overview.append(
            AccountOverview(
                name=name,
                type=spec.type,
                rate_limit=spec.rate,
                burst=spec.burst,
                current_rate=current_rate(deployment.redis, name),
                breaker=breaker.state,
                breaker_until=breaker.until,
                breaker_reason=breaker.reason,
                recent_failures=f"{breaker.recent_failures}/{breaker.recent_calls}",
                paused=paused_reason(deployment.redis, name),
            )
        )
    return overview


def check_accounts(accounts: Mapping[str, Account], names: list[str] | None = None) -> list[AccountCheck]:
    """Prove each of ``accounts`` (those ``names``, default all) works with its cheapest
    authenticated call."""
    from sms_worker.providers.failures import ProviderError

    results: list[AccountCheck] = []
    for name in names or sorted(accounts):
        try:
            results.append(AccountCheck(name, True, accounts[name].adapter.verify()))
        except ProviderError as error:
            scope = "account-wide " if error.account_wide else ""
            results.append(AccountCheck(name, False, f"{scope}{error.kind.value} error {error.code}: {error.text}"))
        except Exception as error:  # noqa: BLE001 - one broken account must not hide the others' results
            results.append(AccountCheck(name, False, f"{type(error).__name__}: {error}"))
    return results
