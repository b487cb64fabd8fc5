"""the orders' index per customer covers what the segments' inputs read

Revision ID: segments_4
Revises: segments_3
Create Date: 2026-11-30

A shop's first segmenting pass groups every paid order per customer. With
`(customer_id, paid_at)` alone the database either sorted the orders (SQLite, PostgreSQL) or
walked that index and looked every order up in the table; with the status, currency, total
and refund in the index it walks the index alone, already in customer order. The index
replaces the narrow one (every user of `(customer_id, paid_at)` is served by its prefix), so
an order write still updates one index per customer, only a wider one. The new index is
built before the old one is dropped: MariaDB's foreign key on `customer_id` needs one of
them at every moment.
"""

from alembic import op

revision = "segments_4"
down_revision = "segments_3"
branch_labels = None
depends_on = None

NARROW = ("customer_id", "paid_at")
WIDE = ("customer_id", "paid_at", "status", "currency", "total", "refunded")


def _name(columns: tuple[str, ...]) -> str:
    return "ix_orders_" + "_".join(columns)


def upgrade() -> None:
    op.create_index(_name(WIDE), "orders", list(WIDE), unique=False)
    op.drop_index(_name(NARROW), table_name="orders")


def downgrade() -> None:
    op.create_index(_name(NARROW), "orders", list(NARROW), unique=False)
    op.drop_index(_name(WIDE), table_name="orders")
