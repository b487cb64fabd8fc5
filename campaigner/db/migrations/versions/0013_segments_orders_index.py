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

MariaDB commits each index statement on its own: an upgrade killed after building the new
index (minutes on a large shop) and before the version is stamped leaves both indexes at
`segments_3`, so each step skips an index already in the state it wants, and running the
upgrade (or downgrade) again finishes it instead of failing on a duplicate name.
"""

import sqlalchemy as sa
from alembic import op

revision = "segments_4"
down_revision = "segments_3"
branch_labels = None
depends_on = None

NARROW = ("customer_id", "paid_at")
WIDE = ("customer_id", "paid_at", "status", "currency", "total", "refunded")


def _name(columns: tuple[str, ...]) -> str:
    return "ix_orders_" + "_".join(columns)


def _replace(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Build `new`, then drop `old`, each only if not already done (see the docstring)."""
    present = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("orders")}
    if _name(new) not in present:
        op.create_index(_name(new), "orders", list(new), unique=False)
    if _name(old) in present:
        op.drop_index(_name(old), table_name="orders")


def upgrade() -> None:
    _replace(NARROW, WIDE)


def downgrade() -> None:
    _replace(WIDE, NARROW)
