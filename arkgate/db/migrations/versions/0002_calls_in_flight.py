"""calls in flight: a paid call's durable life cycle (issue 13)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_INSTANT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "calls_in_flight",
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("debit_sats", sa.BigInteger(), nullable=False),
        sa.Column("idem_key", sa.String(length=255), nullable=True),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", _INSTANT, nullable=False),
        sa.Column("deadline_at", _INSTANT, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_calls_in_flight_session_id")),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_calls_in_flight")),
    )
    with op.batch_alter_table("calls_in_flight", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_in_flight_deadline_at"), ["deadline_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls_in_flight", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_in_flight_deadline_at"))
    op.drop_table("calls_in_flight")
