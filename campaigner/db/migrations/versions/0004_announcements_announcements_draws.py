"""announcement approvals, prize draws and their winners

Revision ID: announcements_1
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "announcements_1"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("occurrence_key", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.Column("queued_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
        sa.UniqueConstraint(
            "rule", "occurrence_key", name=op.f("uq_announcements_rule_occurrence_key")
        ),
    )
    op.create_table(
        "draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("seed", sa.String(length=128), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("candidates_sha256", sa.String(length=64), nullable=False),
        sa.Column("drawn_by", sa.String(length=128), nullable=False),
        sa.Column("drawn_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draws")),
        sa.UniqueConstraint("name", name=op.f("uq_draws_name")),
    )
    op.create_table(
        "draw_winners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draw_id", sa.Integer(), nullable=False),
        sa.Column("place", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_id"],
            ["draws.id"],
            name=op.f("fk_draw_winners_draw_id_draws"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_draw_winners_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draw_winners")),
        sa.UniqueConstraint("draw_id", "place", name=op.f("uq_draw_winners_draw_id_place")),
        sa.UniqueConstraint(
            "draw_id", "customer_id", name=op.f("uq_draw_winners_draw_id_customer_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("draw_winners")
    op.drop_table("draws")
    op.drop_table("announcements")
