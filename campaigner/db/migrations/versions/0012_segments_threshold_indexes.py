"""value segments ranked from indexes: the payers' inputs in order, spend never NULL, and
the orders changed since the daily pass

Revision ID: segments_3
Revises: products_1
Create Date: 2026-11-30

Rescoring reads each score's four quintile thresholds by walking a partial index over the
payers (`orders > 0`) to a position, instead of sorting the whole shop three times. Spend is
walked in index order, where SQLite and PostgreSQL put NULLs at opposite ends, so a payer's
NULL spend (possible in rows moved off `customers` by segments_2) becomes the 0 the ranking
always counted it as; the downgrade leaves those zeros, which rank the same. The daily pass
refreshes only the customers of orders changed since its previous run, found by
`orders.updated_at`.
"""

import sqlalchemy as sa
from alembic import op

revision = "segments_3"
down_revision = "products_1"
branch_labels = None
depends_on = None

PAYERS = sa.text("orders > 0")
INDEXES = {
    "ix_customer_scores_last_paid_at": ["last_paid_at"],
    "ix_customer_scores_orders": ["orders"],
    "ix_customer_scores_currency_spent": ["currency", "spent"],
}


def upgrade() -> None:
    op.execute("UPDATE customer_scores SET spent = 0 WHERE orders > 0 AND spent IS NULL")
    for name, columns in INDEXES.items():
        op.create_index(
            name,
            "customer_scores",
            columns,
            unique=False,
            sqlite_where=PAYERS,
            postgresql_where=PAYERS,
        )
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_orders_updated_at", table_name="orders")
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="customer_scores")
