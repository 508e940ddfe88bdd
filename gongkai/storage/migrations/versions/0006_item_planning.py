"""an item's planning state: planning runs as a job after the POST has answered

``planning_status`` (pending, running, done, failed, cancelled), ``planned`` of
``planning_total`` deliveries written so far, ``planning_error``, the job carrying the planning
(``planning_job``) and the lease of the worker running it, so reconciliation can queue it again
when Redis lost the job or the worker died mid-way. Items of earlier releases were planned in
their request: they are ``done``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from gongkai.storage.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("item") as batch:
        batch.add_column(
            sa.Column("planning_status", sa.String(length=16), nullable=False, server_default="done")
        )
        batch.add_column(sa.Column("planned", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("planning_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("planning_error", sa.String(), nullable=True))
        batch.add_column(sa.Column("planning_job", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("planning_lease_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("planning_owner", sa.String(length=64), nullable=True))
        batch.create_index("ix_item_planning_status", ["planning_status"], unique=False)
    # what earlier releases planned in the request: every row it wrote
    op.execute(
        "UPDATE item SET planned = (SELECT COUNT(*) FROM delivery WHERE delivery.item_id = item.id)"
    )
    op.execute("UPDATE item SET planning_total = planned")


def downgrade() -> None:
    with op.batch_alter_table("item") as batch:
        batch.drop_index("ix_item_planning_status")
        batch.drop_column("planning_owner")
        batch.drop_column("planning_lease_until")
        batch.drop_column("planning_job")
        batch.drop_column("planning_error")
        batch.drop_column("planning_total")
        batch.drop_column("planned")
        batch.drop_column("planning_status")
