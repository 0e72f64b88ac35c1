"""the account a message goes through is named an account

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 21:00:00

``sms_message.provider`` held the name of a configured account (``telekom-sk``, ``dexatel-eu``),
not a provider: it becomes ``account``, and ``requested_provider`` becomes
``requested_account``. Values are unchanged; ``provider_message_id`` and ``provider_status``
keep their names (they are the provider's id and word).
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_RENAMES = {'provider': 'account', 'requested_provider': 'requested_account'}


def _rename(names: dict[str, str], old_index: str, new_index: str, indexed: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # Renaming in place keeps the index: no rebuild that would hold writes on a large table.
        for old, new in names.items():
            op.alter_column('sms_message', old, new_column_name=new)
        op.execute(f'ALTER INDEX {old_index} RENAME TO {new_index}')
        return
    op.drop_index(old_index, table_name='sms_message')
    with op.batch_alter_table('sms_message') as batch:
        for old, new in names.items():
            batch.alter_column(old, new_column_name=new)
    op.create_index(new_index, 'sms_message', [indexed, 'provider_message_id'])


def upgrade() -> None:
    _rename(_RENAMES, 'ix_sms_message_provider_message', 'ix_sms_message_account_message', 'account')


def downgrade() -> None:
    _rename({new: old for old, new in _RENAMES.items()}, 'ix_sms_message_account_message', 'ix_sms_message_provider_message', 'provider')
