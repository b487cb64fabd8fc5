"""value segments: RFM scores on customers, the history of segment changes

Revision ID: segments_1
Revises: console_1
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "segments_1"
down_revision = "console_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("segment", sa.String(length=24), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("recency_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("frequency_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("monetary_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("segment_currency", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("segment_spent", sa.Numeric(precision=14, scale=2), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_customers_segment"), ["segment"], unique=False)

    op.create_table(
        "segment_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("old", sa.String(length=24), nullable=False),
        sa.Column("new", sa.String(length=24), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_changes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_changes")),
    )
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_changes_changed_at"), ["changed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_segment_changes_customer_id_changed_at"),
            ["customer_id", "changed_at"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("segment_changes")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_segment"))
        batch_op.drop_column("segment_spent")
        batch_op.drop_column("segment_currency")
        batch_op.drop_column("monetary_score")
        batch_op.drop_column("frequency_score")
        batch_op.drop_column("recency_score")
        batch_op.drop_column("segment")
