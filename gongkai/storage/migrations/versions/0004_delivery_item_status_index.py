"""delivery index (item_id, status) in place of (item_id, channel)

After each batch a worker asks whether any of the item's deliveries is still open, to mark the
item published. With (item_id, channel) that walked every row of the item: at 10,000
deliveries about 3 ms a batch, growing with the square of the fan-out. (item_id, status) answers
it with one seek, and serves the console's open-deliveries-per-item count too. Nothing filtered
on item and channel together often enough to keep that index beside it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_item_channel")
        batch.create_index("ix_delivery_item_status", ["item_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_item_status")
        batch.create_index("ix_delivery_item_channel", ["item_id", "channel"], unique=False)
