"""wallet keys: address pool and gap tracking

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-03 19:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallet_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("pooled", sa.Boolean(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_wallet_keys_session_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_keys")),
        sa.UniqueConstraint("value", name=op.f("uq_wallet_keys_value")),
    )
    with op.batch_alter_table("wallet_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallet_keys_session_id"), ["session_id"], unique=False)
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_ark_address", ["ark_address"], unique=False)
        batch_op.create_index("ix_payments_payment_hash", ["payment_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_payment_hash")
        batch_op.drop_index("ix_payments_ark_address")
    with op.batch_alter_table("wallet_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_keys_session_id"))
    op.drop_table("wallet_keys")
