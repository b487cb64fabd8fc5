"""line item categories one per row; items found by product id and SKU; a customer's
total spent (and the segments' spend) wider than one order's total

Items stored before this revision (sync, webhooks, the ingest API) get their category rows,
their text folded as rule files' names are (`category_key`: NFKC, Arabic ي/ك as Persian),
so "bought in a category" finds a shop's past orders too.

Revision ID: products_1
Revises: segments_2
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from campaigner.customers.categories import names, store

BACKFILL_BATCH = 5000

revision = "products_1"
down_revision = "segments_2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_item_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["order_items.id"],
            name=op.f("fk_order_item_categories_item_id_order_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_item_categories")),
    )
    with op.batch_alter_table("order_item_categories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_item_categories_category_item_id"),
            ["category", "item_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_order_item_categories_item_id"), ["item_id"], unique=False
        )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_items_product_id"), ["product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_items_sku"), ["sku"], unique=False)
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.alter_column(
            "total_spent",
            existing_type=sa.Numeric(precision=14, scale=2),
            type_=sa.Numeric(precision=18, scale=2),
            existing_nullable=False,
        )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.alter_column(
            "spent",
            existing_type=sa.Numeric(precision=14, scale=2),
            type_=sa.Numeric(precision=18, scale=2),
            existing_nullable=True,
        )
    _backfill_categories()


def _backfill_categories() -> None:
    bind = op.get_bind()
    items = sa.table("order_items", sa.column("id", sa.Integer), sa.column("categories", sa.Text))
    rows = sa.table(
        "order_item_categories", sa.column("item_id", sa.Integer), sa.column("category", sa.String)
    )
    last = 0
    while True:
        batch = bind.execute(
            sa.select(items.c.id, items.c.categories)
            .where(items.c.id > last, items.c.categories != "")
            .order_by(items.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not batch:
            return
        last = batch[-1][0]
        refolded, categories = [], []
        for item_id, text in batch:
            folded = store(names(text))
            if folded != text:
                refolded.append({"item": item_id, "folded": folded})
            categories += [{"item_id": item_id, "category": name} for name in names(folded)]
        if refolded:
            bind.execute(
                items.update()
                .where(items.c.id == sa.bindparam("item"))
                .values(categories=sa.bindparam("folded")),
                refolded,
            )
        if categories:
            bind.execute(rows.insert(), categories)


def downgrade() -> None:
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.alter_column(
            "spent",
            existing_type=sa.Numeric(precision=18, scale=2),
            type_=sa.Numeric(precision=14, scale=2),
            existing_nullable=True,
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.alter_column(
            "total_spent",
            existing_type=sa.Numeric(precision=18, scale=2),
            type_=sa.Numeric(precision=14, scale=2),
            existing_nullable=False,
        )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_items_sku"))
        batch_op.drop_index(batch_op.f("ix_order_items_product_id"))
    op.drop_table("order_item_categories")
