"""the shop's own modification time of customers and orders

Revision ID: shops_1
Revises: speed_reports_1
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "shops_1"
down_revision = "speed_reports_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("customers", "orders"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("shop_modified_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    for table in ("orders", "customers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("shop_modified_at")
