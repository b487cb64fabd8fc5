"""the first paid order's time among a customer's segment inputs

Revision ID: segments_5
Revises: segments_4
Create Date: 2026-11-30

A customer's first placement in a value segment is a move from "none" only when their first
paid order is recent (campaigner/segments/scoring.py ARRIVAL_WINDOW): a shop's history,
imported or there before segments, places its customers where they already were. The column
is filled by every refresh of a customer's inputs; rows already scored need no value, since
only a customer without scores can be placed for the first time.
"""

import sqlalchemy as sa
from alembic import op

revision = "segments_5"
down_revision = "segments_4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_scores") as batch:
        batch.add_column(sa.Column("first_paid_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_scores") as batch:
        batch.drop_column("first_paid_at")
