"""lean delivery indexes: drop the two that longer indexes already cover

``ix_delivery_status`` duplicates the leading column of ``ix_delivery_status_created`` and
``ix_delivery_item_id`` that of ``ix_delivery_item_channel``. Every status change of a delivery
(twice per send: claimed, then delivered) paid for the first; every planned row for the second.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_status")
        batch.drop_index("ix_delivery_item_id")


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.create_index("ix_delivery_item_id", ["item_id"], unique=False)
        batch.create_index("ix_delivery_status", ["status"], unique=False)
