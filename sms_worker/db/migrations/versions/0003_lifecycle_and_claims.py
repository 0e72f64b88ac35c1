"""the lifecycle in our own words, delivery reports beside it, claims held in the database

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 14:30:00

- ``status`` moves from Telekom SK's fifteen codes (which meant both where a message was inside
  sms_worker and what the provider reported) to sms_worker's lifecycle (``sms_worker.lifecycle.status``):
  scheduled, queued, claimed, calling, retrying, submitted, and the final delivered,
  undeliverable, rejected, expired, unknown. What the provider reports goes to the new
  ``delivery`` column; its own word stays in ``provider_status``.
- A claim is named in the row (``claim_id``) with the worker process holding it
  (``dispatcher``), whose lease lives in the new ``sms_dispatcher`` table; the per-message
  ``lease_until`` goes. A message left ``PROCESSING`` by the previous release becomes
  ``calling`` under a dispatcher that has no lease, so the recovery sweep resolves it as an
  ambiguous attempt: the previous release kept the fact that its call had started in Redis only.
- Events get a ``code`` column for the error code that the previous release kept in
  ``provider_status``; their statuses are carried over like the messages'.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ORPHANED = "pre-0003"
"""The dispatcher named by calls the previous release left in flight: it holds no lease."""

# Old code -> (status while no provider has the message, status and delivery once one has it).
_WAITING = {"UNSENT": "queued", "SCHEDULED": "scheduled", "ERROR": "retrying", "PROCESSING": "calling"}
_REPORTED = {
    **dict.fromkeys(("UNSENT", "SCHEDULED", "QUEUED", "IN_GROUP", "PROCESSING", "ERROR"), ("submitted", "queued")),
    **dict.fromkeys(("SENDING", "SENT"), ("submitted", "sent")),
    **dict.fromkeys(("DELIVERED", "READ"), ("delivered", "delivered")),
    "EXPIRED": ("expired", "expired"),
    **dict.fromkeys(("DELETED", "UNDELIVERABLE"), ("undeliverable", "undeliverable")),
    "DENIED": ("rejected", "rejected"),
    "UNKNOWN": ("unknown", "unknown"),
}
_FINAL = {old: new for old, (new, _) in _REPORTED.items() if new != "submitted"}


def _case(column: sa.ColumnElement, mapping: dict[str, str], default: sa.ColumnElement | str | None = None) -> sa.Case:
    return sa.case(*((column == old, new) for old, new in mapping.items()), else_=default if default is not None else column)


def upgrade() -> None:
    op.create_table(
        'sms_dispatcher',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('sms_message') as batch:
        batch.add_column(sa.Column('delivery', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('claim_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('dispatcher', sa.String(length=64), nullable=True))
        batch.drop_column('lease_until')
    with op.batch_alter_table('sms_message_event') as batch:
        batch.add_column(sa.Column('code', sa.String(length=64), nullable=True))

    messages = sa.table('sms_message', sa.column('status', sa.String), sa.column('delivery', sa.String),
                        sa.column('provider_message_id', sa.String), sa.column('dispatcher', sa.String))
    reported = messages.c.provider_message_id.is_not(None)
    op.execute(messages.update().where(reported).values(
        delivery=_case(messages.c.status, {old: delivery for old, (_, delivery) in _REPORTED.items()}, sa.null()),
        status=_case(messages.c.status, {old: status for old, (status, _) in _REPORTED.items()}),
    ))
    op.execute(messages.update().where(messages.c.status == "PROCESSING").values(dispatcher=ORPHANED))
    op.execute(messages.update().where(~reported).values(status=_case(messages.c.status, {**_FINAL, **_WAITING})))

    events = sa.table('sms_message_event', sa.column('status', sa.String), sa.column('provider_status', sa.String),
                      sa.column('code', sa.String), sa.column('reason', sa.String))
    report = events.c.reason.like('status from %')
    accepted = events.c.reason.like('%accepted by %')
    failure = ~report & ~accepted & events.c.provider_status.is_not(None)
    op.execute(events.update().where(failure).values(code=events.c.provider_status, provider_status=sa.null()))
    op.execute(events.update().where(report | accepted).values(
        status=_case(events.c.status, {old: status for old, (status, _) in _REPORTED.items()})))
    op.execute(events.update().where(~report & ~accepted).values(status=_case(events.c.status, {**_FINAL, **_WAITING})))


_BACK = {"queued": "UNSENT", "scheduled": "SCHEDULED", "claimed": "PROCESSING", "calling": "PROCESSING", "retrying": "ERROR",
         "delivered": "DELIVERED", "undeliverable": "UNDELIVERABLE", "rejected": "DENIED", "expired": "EXPIRED", "unknown": "UNKNOWN"}
_BACK_REPORTED = {"queued": "QUEUED", "sent": "SENT", "unknown": "SENT"}


def downgrade() -> None:
    messages = sa.table('sms_message', sa.column('status', sa.String), sa.column('delivery', sa.String))
    op.execute(messages.update().where(messages.c.status == "submitted").values(
        status=_case(messages.c.delivery, _BACK_REPORTED, "QUEUED")))
    op.execute(messages.update().values(status=_case(messages.c.status, _BACK)))
    events = sa.table('sms_message_event', sa.column('status', sa.String), sa.column('provider_status', sa.String), sa.column('code', sa.String))
    op.execute(events.update().where(events.c.status == "submitted").values(status="QUEUED"))
    op.execute(events.update().values(status=_case(events.c.status, _BACK)))
    op.execute(events.update().where(events.c.code.is_not(None)).values(provider_status=events.c.code))
    with op.batch_alter_table('sms_message_event') as batch:
        batch.drop_column('code')
    with op.batch_alter_table('sms_message') as batch:
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch.drop_column('dispatcher')
        batch.drop_column('claim_id')
        batch.drop_column('delivery')
    op.drop_table('sms_dispatcher')
