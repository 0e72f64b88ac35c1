"""the account a message is pinned to apart from the one its producer named; a provider's
"cannot tell yet" report is undetermined

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 00:00:00

- ``pinned_account``: the only account that may carry the message, read by routing, the retry
  policy and the reclaimer: the one its producer named, or the one an ambiguous attempt went to (it may
  have the message). Until now both were written to ``requested_account``, which from now on
  holds only what the producer named. Each row's ``requested_account`` is copied into it: that
  is what the row was pinned to, whichever wrote it. (A row an ambiguous attempt pinned keeps
  that account in ``requested_account`` too: nothing in the row tells the two apart.)
- ``delivery`` ``unknown`` (the provider says it cannot tell yet; the message stays
  ``submitted``) becomes ``undetermined``: ``unknown`` is a final status only.

Downgrade puts the pin back where 0005 reads it: a message pinned since the upgrade (its
producer named no account) gets it in ``requested_account``, so the earlier release sends it
nowhere else.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_MESSAGES = sa.table(
    'sms_message',
    sa.column('requested_account', sa.String),
    sa.column('pinned_account', sa.String),
    sa.column('delivery', sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table('sms_message') as batch:
        batch.add_column(sa.Column('pinned_account', sa.String(64), nullable=True))
    messages = _MESSAGES
    op.execute(
        messages.update()
        .where(messages.c.requested_account.is_not(None))
        .values(pinned_account=messages.c.requested_account)
    )
    op.execute(messages.update().where(messages.c.delivery == 'unknown').values(delivery='undetermined'))


def downgrade() -> None:
    messages = _MESSAGES
    op.execute(messages.update().where(messages.c.delivery == 'undetermined').values(delivery='unknown'))
    op.execute(
        messages.update()
        .where(messages.c.pinned_account.is_not(None))
        .values(requested_account=messages.c.pinned_account)
    )
    with op.batch_alter_table('sms_message') as batch:
        batch.drop_column('pinned_account')
