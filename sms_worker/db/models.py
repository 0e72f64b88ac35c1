"""The message record and its append-only event history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Table, Text, Uuid, false
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, whatever the database keeps.

    SQLite stores no offset: without this a ``send_at`` given in another zone would be read
    back as if it were UTC, and a message would go out hours early or expire unsent.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_column(*, nullable: bool = True, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Message(SQLModel, table=True):
    __tablename__ = "sms_message"
    __table_args__ = (
        Index("ix_sms_message_status_send_after", "status", "send_after"),
        Index("ix_sms_message_status_next_check_at", "status", "next_check_at"),
        Index("ix_sms_message_account_message", "account", "provider_message_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    recipient: str = Field(sa_column=Column(String(16), nullable=False))
    sender: str | None = Field(default=None, sa_column=Column(String(20)))
    text: str = Field(sa_column=Column(Text, nullable=False))
    encoding: str = Field(sa_column=Column(String(5), nullable=False))
    segments: int
    priority: int = Field(description="1 low, 2 standard, 3 high (Telekom SK's scale).")
    account: str = Field(sa_column=Column(String(64), nullable=False), description="The account that has (or last tried) the message.")
    requested_account: str | None = Field(
        default=None,
        sa_column=Column(String(64)),
        description="The account the producer named, never changed since (before migration 0006 an ambiguous attempt's pin was written here too).",
    )
    pinned_account: str | None = Field(
        default=None,
        sa_column=Column(String(64)),
        description="The only account that may carry the message (no routing, no failover): the one the producer named, "
        "or the one an ambiguous attempt went to, which may have it. None: routing chooses.",
    )
    status: str = Field(
        sa_column=Column(String(16), nullable=False), description="Where the message is: a value of sms_worker.lifecycle.status.Status."
    )
    delivery: str | None = Field(
        default=None, sa_column=Column(String(16)), description="What its provider last reported: a value of sms_worker.lifecycle.status.Delivery."
    )
    provider_status: str | None = Field(default=None, sa_column=Column(String(32)), description="The provider's own word for that report.")
    attempts: int = Field(default=0, description="Provider calls started (status calling or after), the ones not counted excepted.")
    unicode: bool | None = Field(
        default=None, description="None detects; False: the text was folded into GSM-7 at enqueue; True asks Telekom SK for UCS-2."
    )
    flash: bool = False
    on_ambiguous: str | None = Field(
        default=None,
        sa_column=Column(String(8)),
        description="After an ambiguous attempt, where the provider cannot be asked: 'resend' or 'give-up'; None: the account's policy.",
    )
    unsure_since: datetime | None = Field(
        default=None,
        sa_column=_utc_column(),
        description="Start of the earliest attempt that may have reached the provider (kept once final); None: none was ambiguous.",
    )
    possible_duplicate: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
        description="Accepted by a resend after an ambiguous attempt the provider could not be asked about: it may have arrived twice.",
    )
    send_after: datetime = Field(sa_column=_utc_column(nullable=False))
    valid_until: datetime = Field(sa_column=_utc_column(nullable=False))
    first_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column())
    last_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column())
    claim_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()), description="Names the claim while a worker holds the message.")
    dispatcher: str | None = Field(default=None, sa_column=Column(String(64)), description="The worker process holding it (sms_dispatcher.id).")
    next_check_at: datetime | None = Field(default=None, sa_column=_utc_column())
    provider_message_id: str | None = Field(default=None, sa_column=Column(String(64)))
    error_code: str | None = Field(default=None, sa_column=Column(String(64)))
    error_text: str | None = Field(default=None, sa_column=Column(Text))
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(128), unique=True))
    campaign_id: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    updated_at: datetime = Field(sa_column=_utc_column(nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=_utc_column())


class MessageEvent(SQLModel, table=True):
    __tablename__ = "sms_message_event"

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    message_id: uuid.UUID = Field(foreign_key="sms_message.id", index=True)
    at: datetime = Field(sa_column=_utc_column(nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False), description="The message's status after this event.")
    provider_status: str | None = Field(default=None, sa_column=Column(String(32)), description="The provider's word, for a report.")
    code: str | None = Field(default=None, sa_column=Column(String(64)), description="The error code, for a failed attempt.")
    reason: str = Field(sa_column=Column(Text, nullable=False))


class Dispatcher(SQLModel, table=True):
    """A worker process that may hold claims, and the lease it renews while it lives.

    A message a worker holds names it (``sms_message.dispatcher``); when its heartbeat stops the
    recovery sweep takes its claims back (:mod:`sms_worker.recovery`)."""

    __tablename__ = "sms_dispatcher"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    host: str = Field(sa_column=Column(String(255), nullable=False))
    pid: int
    started_at: datetime = Field(sa_column=_utc_column(nullable=False))
    heartbeat_at: datetime = Field(sa_column=_utc_column(nullable=False))


def table_of(model: type[SQLModel]) -> Table:
    """The Core table a table model maps (SQLModel does not declare ``__table__`` to type checkers)."""
    return cast(Table, sa_inspect(model).local_table)
