"""requested provider, and a lookup of messages by their provider's id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:30:00

A message that names its provider keeps it (``requested_provider``); one that does not is
routed at each attempt, so ``provider`` says which account has (or last tried) it. Delivery
callbacks find their message by ``(provider, provider_message_id)``.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('sms_message') as batch:
        batch.add_column(sa.Column('requested_provider', sa.String(length=64), nullable=True))
    op.create_index('ix_sms_message_provider_message', 'sms_message', ['provider', 'provider_message_id'])


def downgrade() -> None:
    op.drop_index('ix_sms_message_provider_message', table_name='sms_message')
    with op.batch_alter_table('sms_message') as batch:
        batch.drop_column('requested_provider')
