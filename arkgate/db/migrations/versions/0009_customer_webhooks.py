"""customer webhooks: session callback URLs and secrets; deliveries know their session and message id

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03 20:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INSTANT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=191), nullable=True))
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_session_id"), ["session_id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_webhook_deliveries_dedupe_key"), ["dedupe_key"])
    op.create_table(
        "session_webhooks",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("low_balance_sats", sa.BigInteger(), nullable=True),
        sa.Column("low_notified", sa.Boolean(), nullable=False),
        sa.Column("expiring_notified_for", INSTANT, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_session_webhooks_session_id")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("session_webhooks")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_webhook_deliveries_dedupe_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_session_id"))
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("message_id")
        batch_op.drop_column("session_id")
