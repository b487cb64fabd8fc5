"""customers' own dates (child's birthday, anniversary), first orders indexed

Revision ID: occasions_1
Revises: segments_1
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "occasions_1"
down_revision = "segments_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_dates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("calendar", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_dates_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_dates")),
        sa.UniqueConstraint("customer_id", "name", name=op.f("uq_customer_dates_customer_id_name")),
    )
    op.create_index(
        op.f("ix_customer_dates_name_date"), "customer_dates", ["name", "date"], unique=False
    )
    op.create_index(
        op.f("ix_customers_first_order_at"), "customers", ["first_order_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_customers_first_order_at"), table_name="customers")
    op.drop_index(op.f("ix_customer_dates_name_date"), table_name="customer_dates")
    op.drop_table("customer_dates")
