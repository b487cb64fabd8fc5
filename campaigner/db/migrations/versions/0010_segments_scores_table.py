"""value segments in a narrow table of their own; the segment at planning on the ledger

Revision ID: segments_2
Revises: occasions_1
Create Date: 2026-11-30

Rescoring a million customers rewrote a million wide customer rows (and their indexes, and
their `updated_at`); the scores now live in `customer_scores`, one narrow row per customer
with a paid order. The columns leave `customers` with SQLite's own ALTER TABLE DROP COLUMN
(3.35+), not a batch copy: copying `customers` would drop the table its foreign keys point at.
"""

import sqlalchemy as sa
from alembic import op

revision = "segments_2"
down_revision = "occasions_1"
branch_labels = None
depends_on = None

MOVED = ("recency_score", "frequency_score", "monetary_score", "segment_currency", "segment_spent")
SOURCES = ("currency", "spent")  # customer_scores' names of the last two


def upgrade() -> None:
    op.create_table(
        "customer_scores",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("last_paid_at", sa.DateTime(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("spent", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("recency_score", sa.Integer(), nullable=True),
        sa.Column("frequency_score", sa.Integer(), nullable=True),
        sa.Column("monetary_score", sa.Integer(), nullable=True),
        sa.Column("segment", sa.String(length=24), server_default="none", nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_scores_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_scores")),
    )
    op.execute(
        "INSERT INTO customer_scores (customer_id, orders, last_paid_at, currency, spent,"
        " recency_score, frequency_score, monetary_score, segment)"
        " SELECT id, orders_count, last_order_at, segment_currency, segment_spent,"
        " recency_score, frequency_score, monetary_score, segment FROM customers"
        " WHERE segment <> 'none' OR segment_currency IS NOT NULL"
    )
    op.create_index(
        op.f("ix_customer_scores_segment"), "customer_scores", ["segment"], unique=False
    )
    op.drop_index(op.f("ix_customers_segment"), table_name="customers")
    for column in ("segment", *MOVED):
        op.execute(f"ALTER TABLE customers DROP COLUMN {column}")
    op.add_column("messages", sa.Column("customer_segment", sa.String(length=24), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE messages DROP COLUMN customer_segment")
    op.add_column(
        "customers",
        sa.Column("segment", sa.String(length=24), server_default="none", nullable=False),
    )
    op.add_column("customers", sa.Column("recency_score", sa.Integer(), nullable=True))
    op.add_column("customers", sa.Column("frequency_score", sa.Integer(), nullable=True))
    op.add_column("customers", sa.Column("monetary_score", sa.Integer(), nullable=True))
    op.add_column("customers", sa.Column("segment_currency", sa.String(length=8), nullable=True))
    op.add_column(
        "customers", sa.Column("segment_spent", sa.Numeric(precision=14, scale=2), nullable=True)
    )
    same = ((name, name) for name in ("segment", *MOVED[:3]))
    pairs = (*same, *zip(MOVED[3:], SOURCES, strict=True))
    for column, source in pairs:
        op.execute(
            f"UPDATE customers SET {column} = (SELECT s.{source} FROM customer_scores AS s"
            " WHERE s.customer_id = customers.id)"
            " WHERE id IN (SELECT customer_id FROM customer_scores)"
        )
    op.create_index(op.f("ix_customers_segment"), "customers", ["segment"], unique=False)
    op.drop_index(op.f("ix_customer_scores_segment"), table_name="customer_scores")
    op.drop_table("customer_scores")
