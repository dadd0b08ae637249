"""session keys: capped child tokens of a session, and which key spent each call (issue 17)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INSTANT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "session_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("cap_sats", sa.BigInteger(), nullable=True),
        sa.Column("daily_cap_sats", sa.BigInteger(), nullable=True),
        sa.Column("allowed", sa.Text(), nullable=True),
        sa.Column("spent_sats", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("day_spent_sats", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _INSTANT, nullable=False),
        sa.Column("expires_at", _INSTANT, nullable=True),
        sa.Column("revoked_at", _INSTANT, nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_session_keys_session_id")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_session_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_session_keys_token_hash")),
    )
    op.create_index(op.f("ix_session_keys_session_id"), "session_keys", ["session_id"], unique=False)
    op.add_column("calls", sa.Column("key_id", sa.String(length=32), nullable=True))
    op.add_column("calls_in_flight", sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls_in_flight", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    op.drop_index(op.f("ix_session_keys_session_id"), table_name="session_keys")
    op.drop_table("session_keys")
