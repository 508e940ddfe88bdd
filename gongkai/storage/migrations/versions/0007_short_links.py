"""short links: /s/{code} per item, language and channel, with an opens counter

An SMS variable holds at most ~35 characters on Aliyun and no URL at all on Tencent, so SMS
carries ``/s/{code}`` instead of the page's address; every channel that links to the page
hands out its own code, so opens are counted per channel (a counter, nothing about readers).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from gongkai.storage.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "short_link",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("item_id", "channel", "lang", name="uq_short_link_key"),
    )


def downgrade() -> None:
    op.drop_table("short_link")
