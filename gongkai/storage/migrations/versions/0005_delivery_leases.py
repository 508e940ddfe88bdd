"""delivery leases, the job carrying a row, and the retry deadline

The database is the queue of record: a worker claims a row with a lease it renews while it
works, and any worker takes the row over once the lease has run out (a killed worker, a lost
machine). ``job`` names the arq job carrying a waiting row, so reconciliation re-queues exactly
the rows whose job Redis lost. ``give_up_at`` replaces counting attempts: transient failures
are retried until then.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from gongkai.storage.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("job", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("give_up_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_delivery_status_not_before", ["status", "not_before"], unique=False)
        batch.create_index("ix_delivery_status_lease", ["status", "lease_until"], unique=False)
    # Rows a worker of an earlier release was sending: an expired lease lets the reconciler
    # take them over at once (rows awaiting a verdict keep a NULL lease and are polled).
    op.execute(
        "UPDATE delivery SET lease_until = updated_at "
        "WHERE status = 'sending' AND (provider_message_ids IS NULL "
        "OR CAST(provider_message_ids AS TEXT) IN ('[]', 'null'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_status_lease")
        batch.drop_index("ix_delivery_status_not_before")
        batch.drop_column("give_up_at")
        batch.drop_column("job")
        batch.drop_column("lease_owner")
        batch.drop_column("lease_until")
