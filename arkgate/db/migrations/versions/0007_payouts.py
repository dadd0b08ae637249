"""payouts: withdrawals of a session's balance, and where each session's remainder goes (refund_to)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 20:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _instant() -> sa.DateTime:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payout_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("rail", sa.String(length=16), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("amount_sats", sa.BigInteger(), nullable=False),
        sa.Column("fee_sats", sa.BigInteger(), nullable=False),
        sa.Column("net_sats", sa.BigInteger(), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.Column("movement_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("deadline_at", _instant(), nullable=False),
        sa.Column("settled_at", _instant(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_payouts_session_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("payout_id", name=op.f("uq_payouts_payout_id")),
        sa.UniqueConstraint("movement_id", name=op.f("uq_payouts_movement_id")),
    )
    op.create_index(op.f("ix_payouts_session_id"), "payouts", ["session_id"], unique=False)
    op.create_index(op.f("ix_payouts_state"), "payouts", ["state"], unique=False)
    op.create_table(
        "session_payout_prefs",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("refund_to", sa.Text(), nullable=True),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_payout_prefs")),
    )


def downgrade() -> None:
    op.drop_table("session_payout_prefs")
    op.drop_index(op.f("ix_payouts_state"), table_name="payouts")
    op.drop_index(op.f("ix_payouts_session_id"), table_name="payouts")
    op.drop_table("payouts")
