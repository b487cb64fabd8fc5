"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("first_name", sa.String(length=128), nullable=False),
        sa.Column("last_name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("calendar", sa.String(length=10), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("city", sa.String(length=128), nullable=False),
        sa.Column("birth_md", sa.Integer(), nullable=True),
        sa.Column("birth_jalali_md", sa.Integer(), nullable=True),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("total_spent", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("first_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_order_id", sa.Integer(), nullable=True),
        sa.Column("referral_code", sa.String(length=32), nullable=True),
        sa.Column("referred_by_id", sa.Integer(), nullable=True),
        sa.Column("phone_invalid_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["referred_by_id"], ["customers.id"], name=op.f("fk_customers_referred_by_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
        sa.UniqueConstraint("referral_code", name=op.f("uq_customers_referral_code")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_birth_jalali_md"), ["birth_jalali_md"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customers_birth_md"), ["birth_md"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_customers_last_order_at"), ["last_order_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customers_phone"), ["phone"], unique=False)

    op.create_table(
        "opt_outs",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_opt_outs")),
    )
    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=128), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_inbound_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "gateway", "provider_id", name=op.f("uq_inbound_messages_gateway_provider_id")
        ),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_messages_phone"), ["phone"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("occurrence_key", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("encoding", sa.String(length=8), nullable=True),
        sa.Column("gateway", sa.String(length=64), nullable=True),
        sa.Column("provider_id", sa.String(length=128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_messages_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "rule",
            "customer_id",
            "occurrence_key",
            name=op.f("uq_messages_rule_customer_id_occurrence_key"),
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_phone_sent_at"), ["phone", "sent_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_status_scheduled_for"),
            ["status", "scheduled_for"],
            unique=False,
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("referral_code", sa.String(length=32), nullable=True),
        sa.Column("items_count", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_orders_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("external_id", name=op.f("uq_orders_external_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_customer_id_paid_at"), ["customer_id", "paid_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_paid_at"), ["paid_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_sequence_paid_at"), ["sequence", "paid_at"], unique=False
        )

    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("redeemed_order_id", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_coupons_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_coupons_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint("message_id", name=op.f("uq_coupons_message_id")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "nps_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_nps_responses_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_nps_responses_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_responses")),
        sa.UniqueConstraint("message_id", name=op.f("uq_nps_responses_message_id")),
    )
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nps_responses_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("nps_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nps_responses_received_at"))

    op.drop_table("nps_responses")

    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_customer_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_created_at"))

    op.drop_table("coupons")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_sequence_paid_at"))
        batch_op.drop_index(batch_op.f("ix_orders_paid_at"))
        batch_op.drop_index(batch_op.f("ix_orders_customer_id_paid_at"))

    op.drop_table("orders")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_status_scheduled_for"))
        batch_op.drop_index(batch_op.f("ix_messages_provider_id"))
        batch_op.drop_index(batch_op.f("ix_messages_phone_sent_at"))
        batch_op.drop_index(batch_op.f("ix_messages_customer_id"))

    op.drop_table("messages")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_phone"))

    op.drop_table("inbound_messages")
    op.drop_table("sync_state")
    op.drop_table("opt_outs")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_phone"))
        batch_op.drop_index(batch_op.f("ix_customers_last_order_at"))
        batch_op.drop_index(batch_op.f("ix_customers_birth_md"))
        batch_op.drop_index(batch_op.f("ix_customers_birth_jalali_md"))

    op.drop_table("customers")
