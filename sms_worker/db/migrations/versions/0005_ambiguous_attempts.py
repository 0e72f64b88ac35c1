"""what a message does after an ambiguous attempt, and whether it may have been sent twice

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00

- ``on_ambiguous``: the message's own policy where its provider cannot be asked whether it has
  the message (``resend`` or ``give-up``); NULL takes the account's, then the deployment's.
- ``unsure_since``: when the earliest attempt began that may have reached the provider, not
  settled since; moved to a later attempt's start when the provider, asked, had not the message
  and that later attempt was ambiguous too; NULL if no attempt was ever ambiguous. It is kept
  once the message is final, for its history.
- ``possible_duplicate``: the message was accepted by a resend after such an attempt, without
  the provider having been asked: the recipient may have it twice.

Added columns only: no rewrite of existing rows (the boolean's default is a constant).
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('sms_message') as batch:
        batch.add_column(sa.Column('on_ambiguous', sa.String(8), nullable=True))
        batch.add_column(sa.Column('unsure_since', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('possible_duplicate', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('sms_message') as batch:
        batch.drop_column('possible_duplicate')
        batch.drop_column('unsure_since')
        batch.drop_column('on_ambiguous')
