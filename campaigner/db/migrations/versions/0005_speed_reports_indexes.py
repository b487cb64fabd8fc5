"""an index on customers.timezone, for the planner's list of zones

Revision ID: speed_reports_1
Revises: announcements_1
Create Date: 2026-11-30
"""

from alembic import op

revision = "speed_reports_1"
down_revision = "announcements_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_timezone"), ["timezone"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_timezone"))
